"""Fair dispatch: the database decides which job runs next, and the broker carries only a short
window of ready jobs per queue.

A pass over a queue takes the queue's lock, counts the jobs in flight (dispatched, not yet
claimed), and fills the window's free room with ready jobs chosen by ``fairness.choose``:
round-robin between tenants by weight, then priority and age within a tenant. The jobs are marked
dispatched in the same transaction and published once it commits. A claim frees a place and rings
for the next pass (``Dispatch``), so a queue is refilled as its jobs start. A message the broker
lost holds its place until ``HOPPER_REPUBLISH_AFTER_SECONDS``; then the job is ready again.

No tenant holds the whole window: a tenth of it (rounded down) is kept for the others, so that a
tenant who arrives while another's flood fills the queue has a place at the next pass,
rather than waiting for one to free and for a refill to notice it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import timedelta

from domain.dispatch.fairness import choose
from domain.dispatch.key_view import KeyDefaults
from domain.job_types import Registry
from domain.services.dispatch import HARD_LIMIT_MARGIN_SECONDS, run_command
from domain.unit_of_work import UnitOfWork

# Jobs a queue's window holds by default (HOPPER_DISPATCH_WINDOW).
WINDOW = 100


class DispatchService:
    def __init__(
        self,
        uow: Callable[[], UnitOfWork],
        window: int = WINDOW,
        republish_after_seconds: float = 60.0,
        hard_limit_margin_seconds: float = HARD_LIMIT_MARGIN_SECONDS,
        registry: Registry | None = None,
    ) -> None:
        self._uow = uow
        self._keys = KeyDefaults(registry or Registry())
        # After a pass: seconds until a rate key it found resting may start a job (the
        # dispatcher looks again then, rather than at its next periodic pass).
        self.rests_for: float | None = None
        # Queues whose last pass filled their window to the brim: more may wait behind.
        self.backlogged: set[str] = set()
        self._window = window
        self._most_for_one = window - window // 10  # the rest is kept for the others
        self._lost_after = timedelta(seconds=republish_after_seconds)
        self._hard_limit_margin = hard_limit_margin_seconds

    def dispatch(self, queues: Iterable[str] | None = None) -> int:
        """Fill the windows of ``queues`` (every queue with ready jobs, with None); returns how
        many jobs were dispatched."""
        self.rests_for = None
        if queues is None:
            with self._uow() as uow:
                queues = uow.dispatch.ready_queues()
        return sum(self.fill(queue) for queue in queues)

    def fill(self, queue: str) -> int:
        with self._uow() as uow:
            clock, now = uow.dispatch.lock(queue)
            uow.fix_clock(now)
            in_flight = uow.dispatch.in_flight(queue, now - self._lost_after)
            room = self._window - sum(in_flight.values())
            shares = uow.dispatch.shares(queue) if room > 0 else {}
            if room <= 0:
                self.backlogged.add(queue)
            if not shares:
                uow.commit()  # lets the lock go
                return 0
            tenants = sorted(shares)
            keys = self._keys.view(uow, tenants, now)
            if keys.rests_for is not None:
                self.rests_for = min(keys.rests_for, self.rests_for or keys.rests_for)
            ready = uow.dispatch.ready(queue, tenants, now, room, keys.held_back)
            for tenant, jobs in ready.items():  # each within its own part of the window
                del jobs[max(0, self._most_for_one - in_flight.get(tenant, 0)) :]
            gate = keys.gate(uow, [job for jobs in ready.values() for job in jobs])
            choice = choose(ready, shares, clock, room, gate.admit)
            if choice.jobs:
                uow.jobs.mark_published([job.id for job in choice.jobs], now)
                uow.dispatch.save(queue, choice.passes, choice.clock)
                for job in choice.jobs:
                    uow.publish_after_commit(run_command(job, self._hard_limit_margin))
            uow.commit()
            if len(choice.jobs) < room:
                self.backlogged.discard(queue)
            else:
                self.backlogged.add(queue)
            return len(choice.jobs)

    def forget_lost(self, limit: int = 500) -> int:
        """Make ready again the jobs whose dispatch is older than the republish threshold and
        that no worker claimed (their message was lost)."""
        with self._uow() as uow:
            forgotten = uow.dispatch.forget_lost(uow.now() - self._lost_after, limit)
            uow.commit()
            return forgotten
