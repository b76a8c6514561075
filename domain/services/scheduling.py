"""The scheduler's use cases: publish the webhook deliveries that are due, take back jobs whose
worker is gone, and purge what is past retention (jobs are dispatched by ``domain.dispatch``).

Rows are taken with ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so several schedulers can run at
once without publishing or reclaiming the same job twice.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog
from sqlalchemy.orm.exc import StaleDataError

from domain.model.job import ErrorType, job_error
from domain.ports import DeliverWebhook
from domain.unit_of_work import UnitOfWork

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Retention:
    """How long each kind of record is kept (CONTRACT section 6), each configurable."""

    jobs: timedelta = timedelta(days=30)
    events: timedelta = timedelta(days=30)
    idempotency: timedelta = timedelta(hours=24)
    audit: timedelta = timedelta(days=365)


class SchedulerService:
    def __init__(
        self,
        uow: Callable[[], UnitOfWork],
        republish_after_seconds: float = 60.0,
        retention: Retention | None = None,
    ) -> None:
        self._uow = uow
        self._republish_after = timedelta(seconds=republish_after_seconds)
        self._keep = retention or Retention()

    def publish_due_deliveries(self, limit: int = 500) -> int:
        """The same for webhook deliveries: retries that came due, lost or deferred publishes."""
        with self._uow() as uow:
            now = uow.now()
            due = uow.webhooks.due(now, now - self._republish_after, limit)
            if not due:
                return 0
            uow.webhooks.mark_published([d.id for d in due], now)
            for delivery in due:
                uow.publish_after_commit(DeliverWebhook(delivery.id))
            uow.commit()
            return len(due)

    def reclaim_lapsed(self, limit: int = 100) -> int:
        """End the attempts of running jobs whose lease lapsed (their worker is gone)."""
        with self._uow() as uow:
            now = uow.now()
            lapsed = uow.jobs.lapsed(now, limit)
            for job in lapsed:
                attempt = uow.jobs.attempt(job.current_attempt_id or "")
                if attempt is None:
                    continue
                error = _lapse_error(job.timeout_seconds, attempt.started_at, now, attempt.worker)
                job.fail_attempt(attempt, error, now, retry_at=now)
                log.warning(
                    "lease_lapsed", job_id=job.id, attempt=attempt.number, worker=attempt.worker
                )
            try:
                uow.commit()
            except StaleDataError:
                return 0  # a worker finished one of them meanwhile; the next pass sees the rest
            return len(lapsed)

    def purge(self, batch: int = 500) -> int:
        """Delete one small batch of what is past retention; returns how many rows went."""
        with self._uow() as uow:
            now = uow.now()
            deleted = uow.jobs.purge_finished(now - self._keep.jobs, batch)
            deleted += uow.webhooks.purge_events(now - self._keep.events, batch)
            deleted += uow.records.purge_idempotency(now - self._keep.idempotency, batch)
            deleted += uow.records.purge_audit(now - self._keep.audit, batch)
            uow.commit()
            return deleted


def _lapse_error(
    timeout_seconds: int, started_at: datetime, now: datetime, worker: str | None
) -> dict[str, str]:
    """A lapsed lease past the run's deadline was a run stopped for its timeout (its process
    ended before it could say so); before the deadline, the worker is simply gone."""
    if started_at + timedelta(seconds=timeout_seconds) <= now:
        return job_error(ErrorType.TIMEOUT, f"ran past {timeout_seconds} s")
    return job_error(ErrorType.WORKER_LOST, f"the lease of {worker} lapsed")
