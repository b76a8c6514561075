"""Builders of in-memory domain objects for the unit tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from domain.auth import Principal
from domain.commands import SubmitJob
from domain.ids import new_id
from domain.model import Attempt, Job, Role

NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
LEASE = timedelta(seconds=30)


def make_job(**overrides: Any) -> Job:
    """A queued, due ``echo`` job as the job service would have recorded it at ``NOW``."""
    values: dict[str, Any] = {
        "id": new_id("job"),
        "tenant_id": new_id("ten"),
        "type": "echo",
        "queue": "default",
        "status": "queued",
        "priority": "normal",
        "payload": {"message": "hello"},
        "result": None,
        "error": None,
        "attempts": 0,
        "attempts_total": 0,
        "max_attempts": 3,
        "timeout_seconds": 30,
        "meta": {},
        "run_at": NOW,
        "created_at": NOW,
        "started_at": None,
        "finished_at": None,
        "cancel_requested": False,
        "current_attempt_id": None,
        "lease_expires_at": None,
        "published_at": NOW,
        "request_id": None,
        "version": 1,
    }
    values.update(overrides)
    return Job(**values)


def start(job: Job, at: datetime = NOW, worker: str = "host:1") -> Attempt:
    return job.start(new_id("att"), worker, at, LEASE)


def principal(role: Role = Role.SUBMITTER, tenant_id: str | None = None) -> Principal:
    return Principal(tenant_id=tenant_id or new_id("ten"), key_id=new_id("key"), role=role)


def later(seconds: float, base: datetime = NOW) -> datetime:
    return base + timedelta(seconds=seconds)


def echo(message: str = "hello", **options: Any) -> SubmitJob:
    return SubmitJob(type="echo", payload={"message": message}, **options)


def sleep(seconds: float, **options: Any) -> SubmitJob:
    return SubmitJob(type="sleep", payload={"seconds": seconds}, **options)
