"""``echo``: returns its message. The cheapest smoke test of the whole path."""

import marshmallow as ma

from domain import queues
from domain.context import JobContext
from domain.job_types.registry import JobType


class EchoPayload(ma.Schema):
    message = ma.fields.String(required=True, validate=ma.validate.Length(max=10_000))


class EchoResult(ma.Schema):
    message = ma.fields.String(required=True)


def run(payload: dict, ctx: JobContext) -> dict:
    return {"message": payload["message"]}


JOB_TYPE = JobType(
    name="echo",
    description="Returns its message unchanged.",
    queue=queues.DEFAULT,
    payload_schema=EchoPayload,
    result_schema=EchoResult,
    handler=run,
    default_timeout_seconds=30,
)
