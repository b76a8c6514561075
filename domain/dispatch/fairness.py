"""Which ready jobs go to the broker next: weighted round-robin between tenants (stride
scheduling), then priority and age within each tenant.

Each tenant of a queue has a *pass*, a virtual time. Giving the tenant one job moves its pass on
by ``1 / weight``, and the next job always goes to the tenant whose pass is lowest: over any
stretch where both have work, a tenant of weight 3 gets three jobs for every one of a tenant of
weight 1. The queue's own virtual time is the pass of the last job given; a tenant that comes
back after a quiet spell starts there, so it cannot spend credit saved while it had nothing to
run and starve the others with it.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

Job = TypeVar("Job")


@dataclass(frozen=True)
class Share:
    """One tenant's standing in one queue: its weight and its pass (None: never served)."""

    weight: int
    passed: float | None = None


@dataclass
class Choice(Generic[Job]):
    jobs: list[Job] = field(default_factory=list)  # in the order they are handed out
    passes: dict[str, float] = field(default_factory=dict)  # the new pass of each tenant served
    clock: float = 0.0  # the queue's virtual time after the choice


def choose(
    ready: Mapping[str, Sequence[Job]],
    shares: Mapping[str, Share],
    clock: float,
    room: int,
    admit: Callable[[Job], bool] = lambda _job: True,
) -> Choice[Job]:
    """Up to ``room`` jobs from ``ready`` (each tenant's ready jobs, best first). A job that
    ``admit`` refuses (its key has no place now) is passed over, and its tenant's next is
    taken in its turn."""
    choice: Choice[Job] = Choice(clock=clock)
    heap: list[tuple[float, str]] = []
    for tenant, jobs in ready.items():
        if jobs:
            passed = shares[tenant].passed if tenant in shares else None
            heap.append((max(clock, passed if passed is not None else clock), tenant))
    heapq.heapify(heap)
    taken: dict[str, int] = {}
    while heap and len(choice.jobs) < room:
        passed, tenant = heapq.heappop(heap)
        index, jobs = taken.get(tenant, 0), ready[tenant]
        while index < len(jobs) and not admit(jobs[index]):
            index += 1
        if index == len(jobs):
            continue  # nothing of this tenant's may go now
        choice.jobs.append(jobs[index])
        taken[tenant] = index + 1
        choice.clock = passed
        weight = shares[tenant].weight if tenant in shares else 1
        choice.passes[tenant] = passed + 1.0 / max(1, weight)
        if index + 1 < len(ready[tenant]):
            heapq.heappush(heap, (choice.passes[tenant], tenant))
    return choice
