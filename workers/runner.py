"""Runs one job in a worker process: claim, run the handler under a watchdog, record the end."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable
from typing import Any

import structlog

from domain.context import (
    CancellationToken,
    JobCanceled,
    JobContext,
    PermanentFailure,
    RetryLater,
)
from domain.job_types import Registry
from domain.model import Job, JobStatus
from domain.model.job import ErrorType
from domain.ports import HttpTargets
from domain.services.execution import Claim, ExecutionService
from workers import instruments
from workers.watchdog import Watchdog

log = structlog.get_logger(__name__)


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class JobRunner:
    """``end_process``, when given, ends this process after a handler that would not stop has
    had its attempt recorded (in a pool process; the pool replaces it). Without it the handler
    is left to finish in the background and whatever it writes is refused."""

    def __init__(
        self,
        execution: ExecutionService,
        registry: Registry,
        grace_seconds: float = 3.0,
        end_process: Callable[[], None] | None = None,
        http: HttpTargets | None = None,
    ) -> None:
        self._http = http
        self._execution = execution
        self._registry = registry
        self._grace = grace_seconds
        self._end_process = end_process

    def run(self, job_id: str) -> None:
        claim = self._execution.claim(job_id, worker_name())
        if claim is None:
            return
        log.info("job_started", job_id=job_id, attempt=claim.attempt, job_type=claim.type)
        instruments.JOBS_STARTED.labels(claim.type, claim.queue).inc()
        instruments.QUEUE_WAIT.labels(claim.type).observe(claim.waited_seconds)
        started = time.monotonic()
        token = CancellationToken()
        context = JobContext(
            claim.job_id, claim.attempt, claim.deadline, token, claim.tenant_id, self._http
        )
        watchdog = Watchdog(
            self._execution, claim, token, self._grace, lambda: self._give_up(claim, token)
        )
        watchdog.start()
        try:
            outcome = self._call(claim, context)
        finally:
            watchdog.stop()
        instruments.RUN_DURATION.labels(claim.type).observe(time.monotonic() - started)
        self._record(claim, token, outcome)

    def _call(self, claim: Claim, context: JobContext) -> tuple[str, Any]:
        job_type = self._registry.get(claim.type)
        try:
            return "ok", job_type.handler(job_type.load_payload(claim.payload), context)
        except JobCanceled:
            return "stopped", None
        except PermanentFailure as exc:
            log.info("handler_failed_for_good", job_id=claim.job_id)
            return "failed_for_good", str(exc) or type(exc).__name__
        except RetryLater as exc:
            log.info("handler_retry_later", job_id=claim.job_id, after_seconds=exc.after_seconds)
            return "retry_later", (str(exc) or type(exc).__name__, exc.after_seconds)
        except Exception as exc:
            log.info("handler_raised", job_id=claim.job_id, error_type=type(exc).__name__)
            return "raised", str(exc) or type(exc).__name__

    def _record(self, claim: Claim, token: CancellationToken, outcome: tuple[str, Any]) -> None:
        kind, value = outcome
        job: Job | None = None
        if token.reason == "timeout":
            job = self._execution.fail(
                claim, ErrorType.TIMEOUT, f"ran past {claim.timeout_seconds} s"
            )
        elif token.reason == "canceled" and kind != "ok":
            job = self._execution.canceled(claim)
        elif token.reason == "lease_lost":
            log.warning("run_abandoned", job_id=claim.job_id, reason=token.reason)
        elif kind == "ok":
            job = self._execution.succeed(claim, value)
        elif kind == "failed_for_good":
            job = self._execution.fail(claim, ErrorType.HANDLER_ERROR, value, retry=False)
        elif kind == "retry_later":
            message, after = value
            job = self._execution.fail(claim, ErrorType.HANDLER_ERROR, message, after=after)
        else:
            job = self._execution.fail(claim, ErrorType.HANDLER_ERROR, value)
        ended = _ended_as(job)
        instruments.JOBS_FINISHED.labels(claim.type, claim.queue, ended).inc()
        log.info(
            "job_attempt_ended",
            job_id=claim.job_id,
            attempt=claim.attempt,
            outcome=kind,
            ended_as=ended,
        )

    def _give_up(self, claim: Claim, token: CancellationToken) -> None:
        """The handler did not stop within the grace: record its end as if it had."""
        self._record(claim, token, ("stopped", None))
        if self._end_process is not None:
            log.warning("ending_pool_process", job_id=claim.job_id, pid=os.getpid())
            self._end_process()


def _ended_as(job: Job | None) -> str:
    """The attempt's outcome as ``hopper_jobs_finished_total`` counts it. No job back means the
    write was refused: the attempt no longer owned the job."""
    if job is None:
        return "lease_lost"
    if job.status == JobStatus.QUEUED:
        return "retrying"
    return str(job.status)
