"""The interface a team's own job types are written against: import from here.

A plugin package builds ``JobType`` values and declares them in the ``hopper.job_types``
entry-point group (or names them in ``HOPPER_JOB_TYPES``); README "Your own job types" walks
through it. These names are public: later releases only add optional fields and new names.

A handler is ``handler(payload: dict, ctx: JobContext) -> result``: the payload as its schema
loaded it, and a result its result schema accepts. It raises ``RetryLater`` to be retried (after
a delay of its own, if it knows one), ``PermanentFailure`` to fail at once, and ``JobCanceled``
once ``ctx.cancellation`` is set; any other exception is retried on the type's backoff while
attempts remain.
"""

from domain.context import (
    CancellationToken,
    JobCanceled,
    JobContext,
    PermanentFailure,
    RetryLater,
)
from domain.job_types.fields import JsonNumber
from domain.job_types.registry import JobType

__all__ = [
    "CancellationToken",
    "JobCanceled",
    "JobContext",
    "JobType",
    "JsonNumber",
    "PermanentFailure",
    "RetryLater",
]
