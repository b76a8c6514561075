"""A job and its attempts, and the lifecycle rules: every transition is a method that refuses
an illegal move.

Rows are updated under optimistic concurrency (``version``): two processes that race to move the
same job both issue ``UPDATE … WHERE id = ? AND version = ?`` and exactly one of them wins. That is
how a duplicate message never runs a job twice and a late write from a lost run is refused.
"""

from __future__ import annotations

import enum
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from domain.errors import IllegalTransition, LeaseLost
from domain.model.base import Base, Document


class JobStatus(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"

    @property
    def finished(self) -> bool:
        return self in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELED)


class AttemptStatus(enum.StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class Priority(enum.StrEnum):
    HIGH = "high"
    NORMAL = "normal"
    LOW = "low"


class ErrorType(enum.StrEnum):
    HANDLER_ERROR = "handler_error"
    TIMEOUT = "timeout"
    WORKER_LOST = "worker_lost"
    RESULT_INVALID = "result_invalid"
    CANCELED = "canceled"


def job_error(kind: ErrorType, message: str) -> dict[str, str]:
    return {"type": str(kind), "message": message}


class Attempt(Base):
    __tablename__ = "job_attempts"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))
    error: Mapped[dict[str, Any] | None] = mapped_column(Document, nullable=True)
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    worker: Mapped[str | None] = mapped_column(String(200), nullable=True)

    def close(self, status: AttemptStatus, now: datetime, error: dict[str, Any] | None) -> None:
        if self.status != AttemptStatus.RUNNING:
            raise IllegalTransition(f"attempt {self.id} is already {self.status}")
        self.status = status
        self.error = error
        self.finished_at = now


class Job(Base):
    __tablename__ = "jobs"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    type: Mapped[str] = mapped_column(String(100))
    queue: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(16))
    priority: Mapped[str] = mapped_column(String(8))
    payload: Mapped[Any] = mapped_column(Document)  # secret fields redacted (sealed_fields)
    sealed: Mapped[str | None] = mapped_column(Text, nullable=True)  # their values, encrypted
    result: Mapped[Any | None] = mapped_column(Document, nullable=True)
    error: Mapped[dict[str, Any] | None] = mapped_column(Document, nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # Attempts ever started: attempt numbers run on across manual retries, which reset `attempts`.
    attempts_total: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer)
    timeout_seconds: Mapped[int] = mapped_column(Integer)
    meta: Mapped[dict[str, str]] = mapped_column("metadata", Document)
    run_at: Mapped[datetime]
    created_at: Mapped[datetime]
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    current_attempt_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    lease_expires_at: Mapped[datetime | None]
    published_at: Mapped[datetime | None]
    request_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    schedule_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    # Tenant-scoped keys that bound how many such jobs run at once, and how often they start
    # (domain.dispatch.keys).
    concurrency_key: Mapped[str | None] = mapped_column(String(200), nullable=True)
    rate_key: Mapped[str | None] = mapped_column(String(200), nullable=True)
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__ = {"version_id_col": version}

    @property
    def waiting_for(self) -> str | None:
        """Why a queued job waits (``domain.dispatch.waiting``), once a read has said; None for
        a job that does not wait."""
        reason: str | None = self.__dict__.get("_waiting_for")
        return reason if self.status == JobStatus.QUEUED else None

    def waits_for(self, reason: str) -> None:
        self.__dict__["_waiting_for"] = reason

    def take_events(self) -> list[str]:
        """The event types of the transitions made since the last call (for the outbox)."""
        events: list[str] = self.__dict__.pop("_events", [])
        return events

    def _emit(self, event_type: str) -> None:
        self.__dict__.setdefault("_events", []).append(event_type)

    @property
    def job_status(self) -> JobStatus:
        return JobStatus(self.status)

    @property
    def finished(self) -> bool:
        return self.job_status.finished

    # -- transitions -------------------------------------------------------------------------

    def start(self, attempt_id: str, worker: str, now: datetime, lease: timedelta) -> Attempt:
        """Claim the job for a run: it becomes ``running`` and a new attempt opens."""
        if self.status != JobStatus.QUEUED or self.cancel_requested:
            raise IllegalTransition(f"job {self.id} is {self.status}, not queued")
        if self.run_at > now:
            raise IllegalTransition(f"job {self.id} is not due until {self.run_at.isoformat()}")
        self.status = JobStatus.RUNNING
        self.attempts += 1
        self.attempts_total += 1
        self.started_at = self.started_at or now
        self.current_attempt_id = attempt_id
        self.lease_expires_at = now + lease
        self._emit("job.started")
        return Attempt(
            id=attempt_id,
            job_id=self.id,
            number=self.attempts_total,
            status=AttemptStatus.RUNNING,
            started_at=now,
            worker=worker,
        )

    def succeed(self, attempt: Attempt, result: Any, now: datetime) -> None:
        self._own(attempt)
        attempt.close(AttemptStatus.SUCCEEDED, now, None)
        self.status = JobStatus.SUCCEEDED
        self.result = result
        self._finish(now)
        self._emit("job.succeeded")

    def fail_attempt(
        self, attempt: Attempt, error: dict[str, Any], now: datetime, retry_at: datetime | None
    ) -> None:
        """End a failed attempt: back to ``queued`` at ``retry_at``, or ``failed`` for good.

        ``retry_at`` is None when the error is final whatever the attempts left.
        """
        self._own(attempt)
        attempt.close(AttemptStatus.FAILED, now, error)
        if retry_at is not None and self.attempts < self.max_attempts and not self.cancel_requested:
            self.status = JobStatus.QUEUED
            self.run_at = retry_at
            self.current_attempt_id = None
            self.lease_expires_at = None
            self.published_at = None
            return
        if self.cancel_requested:
            self._end_canceled(now)
            return
        self.status = JobStatus.FAILED
        self.error = error
        self._finish(now)
        self._emit("job.failed")

    def hand_back(self, attempt: Attempt, now: datetime) -> None:
        """Its worker stopped before the attempt ended (a graceful scale-down past its grace):
        the attempt ends as ``worker_lost`` but does not count toward ``max_attempts``, and
        the job is due again at once."""
        self._own(attempt)
        error = job_error(ErrorType.WORKER_LOST, f"handed back: {attempt.worker} stopped")
        attempt.close(AttemptStatus.FAILED, now, error)
        self.attempts -= 1
        if self.cancel_requested:
            self._end_canceled(now)
            return
        self.status = JobStatus.QUEUED
        self.run_at = now
        self.current_attempt_id = None
        self.lease_expires_at = None
        self.published_at = None

    def cancel(self, now: datetime) -> None:
        """Cancel now if queued; if running, ask the handler to stop."""
        if self.status == JobStatus.QUEUED:
            self._end_canceled(now)
        elif self.status == JobStatus.RUNNING:
            self.cancel_requested = True
        else:
            raise IllegalTransition(f"job {self.id} is already {self.status}")

    def stop_canceled(self, attempt: Attempt, now: datetime) -> None:
        """The handler honoured a cancellation request."""
        self._own(attempt)
        attempt.close(AttemptStatus.FAILED, now, job_error(ErrorType.CANCELED, "canceled"))
        self._end_canceled(now)

    def retry(self, now: datetime) -> None:
        if self.status not in (JobStatus.FAILED, JobStatus.CANCELED):
            raise IllegalTransition(
                f"job {self.id} is {self.status}; only failed or canceled jobs can be retried"
            )
        self.status = JobStatus.QUEUED
        self.attempts = 0
        self.run_at = now
        for name in ("result", "error", "started_at", "finished_at", "published_at"):
            setattr(self, name, None)
        self.cancel_requested = False

    # -- helpers -----------------------------------------------------------------------------

    def _own(self, attempt: Attempt) -> None:
        if self.status != JobStatus.RUNNING or self.current_attempt_id != attempt.id:
            raise LeaseLost(f"attempt {attempt.id} no longer owns job {self.id}")

    def _end_canceled(self, now: datetime) -> None:
        self.status = JobStatus.CANCELED
        self.error = job_error(ErrorType.CANCELED, "the job was canceled")
        self._finish(now)
        self._emit("job.canceled")

    def _finish(self, now: datetime) -> None:
        self.finished_at = now
        self.current_attempt_id = None
        self.lease_expires_at = None
