"""The command that hands a job to the workers."""

from __future__ import annotations

from domain.model import Job
from domain.ports import RunJob

# Beyond a job's timeout, how long before the pool kills a run that ignored every softer stop
# (the worker's own stop comes after HOPPER_STOP_GRACE_SECONDS; this only backs it up).
# HOPPER_HARD_LIMIT_MARGIN_SECONDS sets it.
HARD_LIMIT_MARGIN_SECONDS = 30.0


def run_command(job: Job, hard_limit_margin_seconds: float = HARD_LIMIT_MARGIN_SECONDS) -> RunJob:
    return RunJob(
        job_id=job.id,
        queue=job.queue,
        priority=job.priority,
        request_id=job.request_id,
        hard_time_limit=job.timeout_seconds + hard_limit_margin_seconds,
    )
