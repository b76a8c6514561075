"""``sleep``: waits, honouring cancellation within a second. For canaries and load tests."""

import time

import marshmallow as ma

from domain import queues
from domain.context import JobCanceled, JobContext
from domain.job_types.fields import JsonNumber
from domain.job_types.registry import JobType


class SleepPayload(ma.Schema):
    seconds = JsonNumber(required=True, validate=ma.validate.Range(min=0, max=3600))


class SleepResult(ma.Schema):
    slept = ma.fields.Float(required=True)


def run(payload: dict, ctx: JobContext) -> dict:
    started = time.monotonic()
    if ctx.cancellation.wait(float(payload["seconds"])):
        raise JobCanceled(ctx.cancellation.reason or "canceled")
    return {"slept": round(time.monotonic() - started, 3)}


JOB_TYPE = JobType(
    name="sleep",
    description="Sleeps for the given seconds and reports how long it slept.",
    queue=queues.LONG,
    payload_schema=SleepPayload,
    result_schema=SleepResult,
    handler=run,
    default_timeout_seconds=3700,
)
