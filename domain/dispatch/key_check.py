"""A claim's own check of a job's keys (``domain.dispatch.keys``), under each key's lock: the
dispatcher chose from a view that may be stale by now (a lost message dispatched again, a limit
lowered, two dispatchers' views of one key), and the claim is what starts a job."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from domain.dispatch.key_view import KeyDefaults
from domain.dispatch.keys import parse_rate
from domain.model import Job
from domain.unit_of_work import UnitOfWork


@dataclass
class KeyCheck:
    defaults: KeyDefaults

    def allow(self, uow: UnitOfWork, job: Job, now: datetime) -> bool:
        """Whether the job may start now; if it may, its rate key's next start moves on."""
        if job.concurrency_key and not self._has_a_place(uow, job):
            return False
        return not job.rate_key or self._rate_allows(uow, job, now)

    def _has_a_place(self, uow: UnitOfWork, job: Job) -> bool:
        key = (job.tenant_id, job.concurrency_key or "")
        limit = uow.key_limits.concurrency_limits([key]).get(key) or self.defaults.limit(job.type)
        if limit is None:
            return True
        uow.key_limits.lock("concurrency", key)
        return uow.key_limits.running(key) < limit

    def _rate_allows(self, uow: UnitOfWork, job: Job, now: datetime) -> bool:
        key = (job.tenant_id, job.rate_key or "")
        rate = uow.key_limits.rates([key]).get(key) or self.defaults.rate(job.type)
        if rate is None:
            return True
        uow.key_limits.lock("rate", key)
        next_at = uow.key_limits.next_start(key)
        if next_at is not None and now < next_at:
            return False
        uow.key_limits.set_next_start(key, max(now, next_at or now) + parse_rate(rate).interval)
        return True
