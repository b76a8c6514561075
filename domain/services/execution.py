"""Running a job, as a worker sees it: claim, then finish as succeeded, failed or canceled.

Each step is one transaction under optimistic concurrency: a claim is one conditional update that
also opens the attempt, and every finishing write succeeds only while that attempt still owns the
job, so a duplicate message never runs a job twice and a late write from a lost run is refused.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy.orm.exc import StaleDataError

from domain import sealed_fields
from domain.dispatch.key_check import KeyCheck
from domain.dispatch.key_view import KeyDefaults
from domain.errors import LeaseLost
from domain.ids import new_id
from domain.job_types import Registry
from domain.model import Attempt, Job, JobStatus
from domain.model.job import ErrorType, job_error
from domain.ports import Dispatch
from domain.retry import backoff_seconds
from domain.secrets import SecretBox
from domain.settings import Settings
from domain.unit_of_work import UnitOfWork

log = structlog.get_logger(__name__)

MAX_RESULT_BYTES = 256 * 1024
_RACE_RETRIES = 5


@dataclass(frozen=True)
class Claim:
    job_id: str
    tenant_id: str
    attempt_id: str
    attempt: int
    type: str
    queue: str
    payload: Any
    deadline: datetime
    timeout_seconds: int
    request_id: str | None
    waited_seconds: float = 0.0  # from when the job was due to this claim


class ExecutionService:
    def __init__(
        self,
        uow: Callable[[], UnitOfWork],
        registry: Registry,
        settings: Settings,
        box: SecretBox | None = None,
    ) -> None:
        self._box = box  # opens a payload's sealed secret fields for the handler
        self._uow = uow
        self._registry = registry
        self._settings = settings
        self._keys = KeyCheck(KeyDefaults(registry))

    def claim(self, job_id: str, worker: str) -> Claim | None:
        """Start the job's next attempt, or None if it is not ours to run now."""
        with self._uow() as uow:
            job, now, has_endpoints, paused = uow.jobs.with_clock(job_id)
            uow.fix_clock(now)
            if job is not None and not has_endpoints:
                uow.no_endpoints(job.tenant_id)
            if job is None or job.status != JobStatus.QUEUED or job.cancel_requested:
                return None
            if paused:
                return self._set_aside(uow, job)  # it waits; lifting the pause dispatches it
            if job.type not in self._registry:
                log.warning("unknown_job_type_left_queued", job_id=job_id, job_type=job.type)
                return None
            if job.run_at > now:
                return None
            if not self._keys.allow(uow, job, now):
                return self._set_aside(uow, job)  # a key has no place now: it waits for one
            due_at = job.run_at
            attempt = job.start(new_id("att"), worker, now, self.lease)
            uow.add(attempt)
            uow.publish_after_commit(Dispatch(job.queue))  # its place in the window is free
            try:
                uow.commit()
            except StaleDataError:
                return None  # another worker claimed it first
            return Claim(
                job_id=job.id,
                tenant_id=job.tenant_id,
                attempt_id=attempt.id,
                attempt=attempt.number,
                type=job.type,
                queue=job.queue,
                payload=self._payload(job),
                deadline=now + timedelta(seconds=job.timeout_seconds),
                timeout_seconds=job.timeout_seconds,
                request_id=job.request_id,
                waited_seconds=max(0.0, (now - due_at).total_seconds()),
            )

    def _set_aside(self, uow: UnitOfWork, job: Job) -> None:
        """The job may not start now: it leaves the window (it is ready again, for when it
        may), and the place it held goes to another."""
        uow.jobs.mark_unpublished([job.id])
        uow.publish_after_commit(Dispatch(job.queue))
        uow.commit()

    def _payload(self, job: Job) -> Any:
        if job.sealed is None:
            return job.payload
        if self._box is None:  # never run a handler on "[redacted]" in place of its secrets
            raise RuntimeError("this job has sealed fields and the worker has no key to open them")
        return sealed_fields.opened(self._box, job.payload, job.sealed)

    def hand_back(self, workers: Sequence[str]) -> list[Job]:
        """End the attempts still running on ``workers`` (processes that are stopping) as handed
        back, and dispatch their jobs again at once. Returns the jobs."""
        with self._uow() as uow:
            now = uow.now()
            runs = uow.jobs.running_on(workers)
            for job, attempt in runs:
                job.hand_back(attempt, now)
            for queue in sorted({job.queue for job, _ in runs if job.status == JobStatus.QUEUED}):
                uow.publish_after_commit(Dispatch(queue))
            uow.commit()
            return [job for job, _ in runs]

    def look(self, claim: Claim) -> tuple[bool, bool]:
        """Without writing: (the claim still owns the job, cancellation requested)."""
        with self._uow() as uow:
            return uow.jobs.ownership(claim.job_id, claim.attempt_id)

    def renew(self, claim: Claim) -> tuple[bool, bool]:
        """Extend the claim's lease. Returns (still ours, cancellation requested)."""
        with self._uow() as uow:
            owned, cancel = uow.jobs.renew_lease(
                claim.job_id, claim.attempt_id, uow.now() + self.lease
            )
            uow.commit()
            return owned, cancel

    @property
    def lease(self) -> timedelta:
        return timedelta(seconds=self._settings.lease_seconds)

    def succeed(self, claim: Claim, result: Any) -> Job | None:
        problem = self._result_problem(claim, result)
        if problem is not None:
            return self.fail(claim, ErrorType.RESULT_INVALID, problem, retry=False)
        return self._finish(claim, lambda job, attempt, now: job.succeed(attempt, result, now))

    def fail(
        self,
        claim: Claim,
        kind: ErrorType,
        message: str,
        *,
        retry: bool = True,
        after: float | None = None,
    ) -> Job | None:
        """End the attempt as failed: retried (on the backoff, or ``after`` seconds when the
        handler knew better) while attempts remain, unless ``retry`` is False."""
        error = job_error(kind, message[:2000])

        def fail(job: Job, attempt: Attempt, now: datetime) -> None:
            delay = self._backoff(job) if after is None else after
            retry_at = now + timedelta(seconds=delay) if retry else None
            job.fail_attempt(attempt, error, now, retry_at)

        return self._finish(claim, fail)

    def canceled(self, claim: Claim) -> Job | None:
        return self._finish(claim, lambda job, attempt, now: job.stop_canceled(attempt, now))

    def _finish(self, claim: Claim, move: Callable[[Job, Attempt, datetime], None]) -> Job | None:
        for _ in range(_RACE_RETRIES):
            with self._uow() as uow:
                job, attempt, now, has_endpoints = uow.jobs.attempt_with_clock(
                    claim.job_id, claim.attempt_id
                )
                uow.fix_clock(now)
                if job is None or attempt is None:
                    return None
                if not has_endpoints:
                    uow.no_endpoints(job.tenant_id)
                if job.concurrency_key:  # its place is free once it ends
                    uow.publish_after_commit(Dispatch(job.queue))
                try:
                    move(job, attempt, now)
                except LeaseLost:
                    log.warning(
                        "late_write_refused", job_id=claim.job_id, attempt_id=claim.attempt_id
                    )
                    return None
                try:
                    uow.commit()
                except StaleDataError:
                    continue  # a cancel request or a renewal raced us: read again
                return job
        log.error("finish_gave_up", job_id=claim.job_id, attempt_id=claim.attempt_id)
        return None

    def _backoff(self, job: Job) -> float:
        job_type = self._registry.get(job.type)
        base = job_type.retry_base_seconds or self._settings.retry_base_seconds
        cap = job_type.retry_max_seconds or self._settings.retry_max_seconds
        return backoff_seconds(job.attempts, base, cap)

    def _result_problem(self, claim: Claim, result: Any) -> str | None:
        try:
            size = len(json.dumps(result, allow_nan=False, ensure_ascii=False).encode())
        except (TypeError, ValueError) as exc:
            return f"the result is not JSON: {exc}"
        if size > MAX_RESULT_BYTES:
            return f"the result is {size} bytes; the cap is {MAX_RESULT_BYTES}"
        errors = self._registry.get(claim.type).validate_result(result)
        if errors:
            return "; ".join(f"{e.field}: {e.message}" for e in errors)
        return None
