"""``fail``: raises on its first ``times`` attempts, then succeeds. Exercises retries."""

import marshmallow as ma

from domain import queues
from domain.context import JobContext
from domain.job_types.registry import JobType


class FailPayload(ma.Schema):
    message = ma.fields.String(required=True, validate=ma.validate.Length(max=10_000))
    times = ma.fields.Integer(
        load_default=None, allow_none=True, strict=True, validate=ma.validate.Range(min=0)
    )


class FailResult(ma.Schema):
    attempt = ma.fields.Integer(required=True)


class DeliberateFailure(Exception):
    pass


def run(payload: dict, ctx: JobContext) -> dict:
    times = payload.get("times")
    if times is None or ctx.attempt <= times:
        raise DeliberateFailure(payload["message"])
    return {"attempt": ctx.attempt}


JOB_TYPE = JobType(
    name="fail",
    description=(
        "Fails with the message on its first `times` attempts (always, if omitted), then succeeds."
    ),
    queue=queues.DEFAULT,
    payload_schema=FailPayload,
    result_schema=FailResult,
    handler=run,
    default_timeout_seconds=30,
)
