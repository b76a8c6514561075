"""``domain.representation``: the job as the API shows it."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

from domain.model.job import ErrorType, job_error
from domain.representation import AttemptSchema, job_body, rfc3339
from tests.unit.builders import NOW, later, make_job, start

CONTRACT_FIELDS = {
    "id",
    "type",
    "status",
    "priority",
    "payload",
    "result",
    "error",
    "attempts",
    "max_attempts",
    "timeout_seconds",
    "metadata",
    "run_at",
    "created_at",
    "started_at",
    "finished_at",
    "cancel_requested",
    "schedule_id",
    "concurrency_key",
    "rate_key",
    "waiting_for",
}
RFC3339_Z = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")


def test_job_body_has_exactly_the_contract_fields() -> None:
    body = job_body(make_job())
    assert set(body) == CONTRACT_FIELDS


def test_job_body_of_a_queued_job() -> None:
    job = make_job(meta={"team": "core", "ticket": "T-1"}, priority="high", request_id="req-1")
    body = job_body(job)
    assert body["id"] == job.id
    assert body["type"] == "echo"
    assert body["status"] == "queued"
    assert body["priority"] == "high"
    assert body["payload"] == {"message": "hello"}
    assert body["result"] is None
    assert body["error"] is None
    assert body["attempts"] == 0
    assert body["max_attempts"] == 3
    assert body["timeout_seconds"] == 30
    assert body["metadata"] == {"team": "core", "ticket": "T-1"}
    assert body["run_at"] == "2026-03-01T12:00:00.000Z"
    assert body["created_at"] == "2026-03-01T12:00:00.000Z"
    assert body["started_at"] is None
    assert body["finished_at"] is None
    assert body["cancel_requested"] is False
    assert body["schedule_id"] is None
    for internal in ("meta", "tenant_id", "queue", "version", "request_id", "published_at"):
        assert internal not in body


def test_job_body_of_a_finished_job() -> None:
    job = make_job(max_attempts=1)
    attempt = start(job, later(1))
    error = job_error(ErrorType.HANDLER_ERROR, "boom")
    job.fail_attempt(attempt, error, later(2.5), retry_at=None)
    body = job_body(job)
    assert body["status"] == "failed"
    assert body["error"] == {"type": "handler_error", "message": "boom"}
    assert body["attempts"] == 1
    assert body["started_at"] == "2026-03-01T12:00:01.000Z"
    assert body["finished_at"] == "2026-03-01T12:00:02.500Z"
    for name in ("run_at", "created_at", "started_at", "finished_at"):
        assert RFC3339_Z.match(body[name]), body[name]


def test_timestamps_in_another_offset_are_shown_in_utc() -> None:
    paris = timezone(timedelta(hours=1))
    created = datetime(2026, 3, 1, 13, 0, 0, 123456, tzinfo=paris)
    body = job_body(make_job(created_at=created, run_at=created))
    assert body["created_at"] == "2026-03-01T12:00:00.123Z"
    assert rfc3339(created) == "2026-03-01T12:00:00.123Z"
    assert rfc3339(NOW.astimezone(UTC)) == "2026-03-01T12:00:00.000Z"


def test_result_is_passed_through_as_is() -> None:
    result = {"nested": {"list": [1, 2.5, None, "x"]}}
    assert job_body(make_job(status="succeeded", result=result))["result"] == result


def test_attempt_representation() -> None:
    job = make_job()
    attempt = start(job, NOW, worker="host:7")
    body = AttemptSchema().dump(attempt)
    assert set(body) == {"id", "number", "status", "error", "started_at", "finished_at", "worker"}
    assert body["number"] == 1
    assert body["status"] == "running"
    assert body["started_at"] == "2026-03-01T12:00:00.000Z"
    assert body["finished_at"] is None
    assert body["worker"] == "host:7"
