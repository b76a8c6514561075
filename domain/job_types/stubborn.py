"""``stubborn``: waits without ever looking at its cancellation token. A diagnostic for the hard
stop: a timeout or a cancel still ends it, by ending the process that runs it."""

import time

from domain import queues
from domain.context import JobContext
from domain.job_types.registry import JobType
from domain.job_types.sleep import SleepPayload, SleepResult


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
    payload_schema=SleepPayload,
    result_schema=SleepResult,
    handler=run,
    default_timeout_seconds=3700,
    default_max_attempts=1,
)
