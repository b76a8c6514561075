"""Runs one job in a worker process: claim, run the handler under a heartbeat, record the end."""

from __future__ import annotations

import os
import socket
import threading
from datetime import UTC, datetime
from typing import Any

import structlog

from domain.context import CancellationToken, JobCanceled, JobContext
from domain.errors import DomainError
from domain.job_types import Registry
from domain.model.job import ErrorType
from domain.services.execution import Claim, ExecutionService

log = structlog.get_logger(__name__)


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class Heartbeat(threading.Thread):
    """Renews the lease every third of its length while the handler runs, and passes on a
    cancellation request or the deadline to the handler's token."""

    def __init__(self, execution: ExecutionService, claim: Claim, token: CancellationToken) -> None:
        super().__init__(name=f"heartbeat-{claim.job_id}", daemon=True)
        self._execution = execution
        self._claim = claim
        self._token = token
        self._stopped = threading.Event()
        self._interval = execution.lease.total_seconds() / 3

    def run(self) -> None:
        while not self._stopped.wait(self._interval_now()):
            if self._deadline_passed():
                self._token.cancel("timeout")
                continue
            try:
                owned, cancel = self._execution.renew(self._claim)
            except DomainError as exc:  # the database is away: the lease may lapse, that is fine
                log.warning("lease_renewal_failed", job_id=self._claim.job_id, error=str(exc))
                continue
            if not owned:
                self._token.cancel("lease_lost")
            elif cancel:
                self._token.cancel("canceled")

    def _interval_now(self) -> float:
        # Wake in time for the deadline too, so a timeout is noticed within a second.
        return min(self._interval, 1.0)

    def _deadline_passed(self) -> bool:
        return datetime.now(UTC) >= self._claim.deadline

    def stop(self) -> None:
        self._stopped.set()


class JobRunner:
    def __init__(self, execution: ExecutionService, registry: Registry) -> None:
        self._execution = execution
        self._registry = registry

    def run(self, job_id: str) -> None:
        claim = self._execution.claim(job_id, worker_name())
        if claim is None:
            return
        log.info("job_started", job_id=job_id, attempt=claim.attempt, job_type=claim.type)
        token = CancellationToken()
        context = JobContext(claim.job_id, claim.attempt, claim.deadline, token)
        heartbeat = Heartbeat(self._execution, claim, token)
        heartbeat.start()
        try:
            outcome = self._call(claim, context)
        finally:
            heartbeat.stop()
        self._record(claim, token, outcome)

    def _call(self, claim: Claim, context: JobContext) -> tuple[str, Any]:
        job_type = self._registry.get(claim.type)
        try:
            return "ok", job_type.handler(job_type.load_payload(claim.payload), context)
        except JobCanceled:
            return "stopped", None
        except Exception as exc:
            log.info("handler_raised", job_id=claim.job_id, error_type=type(exc).__name__)
            return "raised", str(exc) or type(exc).__name__

    def _record(self, claim: Claim, token: CancellationToken, outcome: tuple[str, Any]) -> None:
        kind, value = outcome
        if token.reason == "timeout":
            self._execution.fail(claim, ErrorType.TIMEOUT, f"ran past {claim.timeout_seconds} s")
        elif kind == "ok":
            self._execution.succeed(claim, value)
        elif kind == "stopped" and token.reason == "canceled":
            self._execution.canceled(claim)
        elif kind == "stopped":
            log.warning("run_abandoned", job_id=claim.job_id, reason=token.reason)
        else:
            self._execution.fail(claim, ErrorType.HANDLER_ERROR, value)
        log.info("job_attempt_ended", job_id=claim.job_id, attempt=claim.attempt, outcome=kind)
