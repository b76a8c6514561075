"""``stubborn``: waits without ever looking at its cancellation token. A diagnostic for the hard
stop: a timeout or a cancel still ends it, by ending the process that runs it."""

import time

import marshmallow as ma

from domain import queues
from domain.context import JobContext
from domain.job_types.fields import JsonNumber
from domain.job_types.registry import JobType


class StubbornPayload(ma.Schema):
    seconds = JsonNumber(required=True, validate=ma.validate.Range(min=0, max=3600))


class StubbornResult(ma.Schema):
    slept = ma.fields.Float(required=True)


def run(payload: dict, ctx: JobContext) -> dict:
    started = time.monotonic()
    while time.monotonic() - started < payload["seconds"]:
        time.sleep(0.05)  # deliberately deaf to ctx.cancellation
    return {"slept": round(time.monotonic() - started, 3)}


JOB_TYPE = JobType(
    name="stubborn",
    description=(
        "Waits for the given seconds and ignores cancellation, to show that a handler which "
        "will not stop is stopped anyway at its deadline."
    ),
    queue=queues.LONG,
    payload_schema=StubbornPayload,
    result_schema=StubbornResult,
    handler=run,
    default_timeout_seconds=3700,
    default_max_attempts=1,
)
