"""The one serializer of each public representation. The job as ``GET /v1/jobs/{id}`` shows it is
the same object in list pages, long-poll answers and webhook bodies."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import marshmallow as ma


class Timestamp(ma.fields.DateTime):
    """RFC 3339 in UTC with a ``Z``, to the millisecond."""

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> str | None:
        if value is None:
            return None
        return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def rfc3339(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class JobErrorSchema(ma.Schema):
    type = ma.fields.String(
        required=True,
        metadata={
            "enum": ["handler_error", "timeout", "worker_lost", "result_invalid", "canceled"]
        },
    )
    message = ma.fields.String(required=True)


class JobSchema(ma.Schema):
    id = ma.fields.String(required=True, metadata={"example": "job_01jd4b2v6v3cz8f0f2m9k7q1xw"})
    type = ma.fields.String(required=True)
    status = ma.fields.String(
        required=True, metadata={"enum": ["queued", "running", "succeeded", "failed", "canceled"]}
    )
    priority = ma.fields.String(required=True, metadata={"enum": ["high", "normal", "low"]})
    payload = ma.fields.Raw(required=True, metadata={"type": "object"})
    result = ma.fields.Raw(allow_none=True, required=True)
    error = ma.fields.Nested(JobErrorSchema, allow_none=True, required=True)
    attempts = ma.fields.Integer(required=True)
    max_attempts = ma.fields.Integer(required=True)
    timeout_seconds = ma.fields.Integer(required=True)
    metadata = ma.fields.Dict(
        keys=ma.fields.String(), values=ma.fields.String(), attribute="meta", required=True
    )
    run_at = Timestamp(required=True)
    created_at = Timestamp(required=True)
    started_at = Timestamp(allow_none=True, required=True)
    finished_at = Timestamp(allow_none=True, required=True)
    cancel_requested = ma.fields.Boolean(required=True)
    schedule_id = ma.fields.String(
        required=True,
        allow_none=True,
        metadata={"description": "The schedule that fired the job; null if it was submitted."},
    )
    concurrency_key = ma.fields.String(required=True, allow_none=True)
    rate_key = ma.fields.String(required=True, allow_none=True)
    waiting_for = ma.fields.String(
        required=True,
        allow_none=True,
        metadata={
            "enum": ["capacity", "run_at", "backoff", "paused", "concurrency", "rate", None],
            "description": "Why a queued job waits: `capacity` (for a place in its queue's "
            "window, or a worker), `run_at` (not yet due, as submitted), `backoff` (not yet "
            "due, a retry), `paused` (its queue is paused for the tenant), `concurrency` (its "
            "concurrency key has no place), `rate` (its rate key allows none yet). Null for a "
            "job that does not wait, and where it is not looked up: a submission's answer, webhook "
            "bodies.",
        },
    )


class AttemptSchema(ma.Schema):
    id = ma.fields.String(required=True)
    number = ma.fields.Integer(required=True)
    status = ma.fields.String(required=True, metadata={"enum": ["running", "succeeded", "failed"]})
    error = ma.fields.Nested(JobErrorSchema, allow_none=True, required=True)
    started_at = Timestamp(required=True)
    finished_at = Timestamp(allow_none=True, required=True)
    worker = ma.fields.String(allow_none=True, required=True)


_job = JobSchema()


def job_body(job: Any) -> dict[str, Any]:
    result: dict[str, Any] = _job.dump(job)
    return result
