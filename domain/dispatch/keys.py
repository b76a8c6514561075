"""Concurrency and rate keys: a tenant's own bounds on its work.

A job's ``concurrency_key`` holds one of the key's places from its dispatch until it finishes;
at most the key's limit of them are dispatched or running at once. A job's ``rate_key`` lets
it start only when the key's rate allows (GCRA with no burst: starts are at least
``1 / rate`` apart), one job of the key dispatched at a time, so that they start in the order
they were submitted. A key's limit, or rate, is the tenant's (``PUT /v1/concurrency-limits/
{key}``, ``PUT /v1/rate-limits/{key}``), else the job type's default; a key with neither
bounds nothing. The dispatcher keeps to them when it chooses (``Gate``), and the claim checks
again under the key's lock, so that a stale view (a lost message dispatched again, a limit
lowered meanwhile) never lets one more start.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Protocol

MAX_LIMIT = 1000
MAX_KEY = 200
_PERIODS = {"second": 1, "minute": 60, "hour": 3600}
_RATE = re.compile(r"^([1-9][0-9]{0,5})/(second|minute|hour)$")

Key = tuple[str, str]  # (tenant id, key)


@dataclass(frozen=True)
class Rate:
    count: int
    period_seconds: int

    @property
    def interval(self) -> timedelta:
        return timedelta(seconds=self.period_seconds / self.count)


def parse_rate(text: str) -> Rate:
    """``"10/second"``, ``"300/minute"``, ``"1000/hour"``: 1 to 999,999 a period."""
    found = _RATE.match(text)
    if found is None:
        raise ValueError(f"{text!r} is not a rate like 10/second, 300/minute or 1000/hour")
    return Rate(int(found.group(1)), _PERIODS[found.group(2)])


class KeyedJob(Protocol):
    tenant_id: str
    type: str
    concurrency_key: str | None
    rate_key: str | None


@dataclass
class Gate:
    """One dispatch pass's view of the keys: whether a job may go now, counting the jobs the
    pass has let through already."""

    held: Counter[Key]  # places taken per concurrency key: running, or dispatched
    limits: Callable[[KeyedJob], int | None]  # the limit of the job's concurrency key
    rated: Callable[[KeyedJob], bool]  # whether the job's rate key has a rate
    waiting: set[Key] = field(default_factory=set)  # rate keys that may not start one now

    def admit(self, job: KeyedJob) -> bool:
        concurrency = (job.tenant_id, job.concurrency_key) if job.concurrency_key else None
        rate = (job.tenant_id, job.rate_key) if job.rate_key else None
        if concurrency is not None:
            limit = self.limits(job)
            if limit is not None and self.held[concurrency] >= limit:
                return False
        if rate is not None and rate in self.waiting:
            return False
        if concurrency is not None:
            self.held[concurrency] += 1
        if rate is not None and self.rated(job):
            self.waiting.add(rate)  # one at a time: the next after this one has started
        return True
