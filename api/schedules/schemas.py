"""Request and response schemas of the schedules resource. A schedule's `job` is the body of
`POST /v1/jobs`, read by the same schema less `run_at`."""

from __future__ import annotations

from typing import Any
from zoneinfo import available_timezones

import marshmallow as ma

from api.fields import FullMatch, StrictBoolean
from api.jobs.schemas import JobCreateSchema
from api.pagination import page_schema
from api.schedules.cron_form import CRON_PATTERN
from domain.representation import Timestamp
from domain.schedules.clock import CATCH_UP
from domain.schedules.model import MAX_INTERVAL_SECONDS, OVERLAP
from domain.schedules.rules import MAX_NAME, NO_RUN_AT, ONE_CADENCE

ZONES = sorted(available_timezones())
CRON = (
    "Five fields (minute hour day month weekday) as crontab(5) writes them, or one of "
    "`@yearly`, `@annually`, `@monthly`, `@weekly`, `@daily`, `@midnight`, `@hourly`. Ranges "
    "run from low to high, and the days must fall in at least one of the months."
)


class ScheduledJobSchema(JobCreateSchema):
    """The body of `POST /v1/jobs` less `run_at`: a schedule sets when each run starts."""

    OPENAPI_VARIANT = "Scheduled"  # its typed jobs are documented apart: ScheduledEchoJob...

    class Meta:
        exclude = ("run_at",)


NOT_CRON = (
    "Not a cron expression: five fields (minute 0-59, hour 0-23, day 1-31, month 1-12 or "
    "JAN-DEC, weekday 0-7 or SUN-SAT) separated by spaces, or a shorthand such as @daily."
)


def _job(**kwargs: Any) -> ma.fields.Nested:
    return ma.fields.Nested(
        ScheduledJobSchema(),
        metadata={"description": "The job each slot submits: the body of POST /v1/jobs."},
        **kwargs,
    )


def _cron() -> ma.fields.String:
    return ma.fields.String(
        validate=[ma.validate.Length(min=1, max=200), FullMatch(CRON_PATTERN, error=NOT_CRON)],
        metadata={"description": CRON, "example": "*/15 9-17 * * MON-FRI"},
    )


def _interval() -> ma.fields.Integer:
    return ma.fields.Integer(
        strict=True,
        validate=ma.validate.Range(min=1, max=MAX_INTERVAL_SECONDS),
        metadata={"description": "Seconds between runs, from the creation (or a new cadence)."},
    )


def _timezone(**kwargs: Any) -> ma.fields.String:
    return ma.fields.String(
        validate=ma.validate.OneOf(ZONES, error="Not an IANA time zone (such as Europe/Berlin)."),
        metadata={"description": "The IANA time zone the cron's wall-clock times are in."},
        **kwargs,
    )


def _name(**kwargs: Any) -> ma.fields.String:
    return ma.fields.String(validate=ma.validate.Length(min=1, max=MAX_NAME), **kwargs)


def _choice(choices: tuple[str, ...], description: str, **kwargs: Any) -> ma.fields.String:
    return ma.fields.String(
        validate=ma.validate.OneOf(choices), metadata={"description": description}, **kwargs
    )


OVERLAP_TEXT = "`skip`: no run starts while the previous one is unfinished."
CATCH_UP_TEXT = "After a pause of the schedulers: `one` runs the latest slot missed, `none` none."


class _ScheduleBody(ma.Schema):
    creating = False  # a new schedule needs a cadence; a change need not name one

    @ma.pre_load
    def _without_run_at(self, data: Any, **_: Any) -> Any:
        """`run_at` is refused with a reason of its own (`_no_run_at`), not as an unknown
        field of the job."""
        job = data.get("job") if isinstance(data, dict) else None
        if isinstance(job, dict) and "run_at" in job:
            return {**data, "job": {k: v for k, v in job.items() if k != "run_at"}}
        return data

    @ma.validates_schema(pass_original=True, skip_on_field_errors=False)
    def _no_run_at(self, _data: Any, original: Any, **_: Any) -> None:
        job = original.get("job") if isinstance(original, dict) else None
        if isinstance(job, dict) and "run_at" in job:
            raise ma.ValidationError({"job": {"run_at": [NO_RUN_AT]}})

    @ma.validates_schema(pass_original=True, skip_on_field_errors=False)
    def _one_cadence(self, _data: Any, original: Any, **_: Any) -> None:
        if not isinstance(original, dict):
            return  # "Invalid input type" says it all
        given = [f for f in ("cron", "interval_seconds") if f in original]
        if len(given) > 1 or (self.creating and not given):
            raise ma.ValidationError({f: [ONE_CADENCE] for f in ("cron", "interval_seconds")})


class ScheduleCreateSchema(_ScheduleBody):
    OPENAPI_EXTRA = {"oneOf": [{"required": ["cron"]}, {"required": ["interval_seconds"]}]}
    creating = True

    name = _name(required=True, metadata={"description": "Unique in the tenant."})
    cron = _cron()
    interval_seconds = _interval()
    timezone = _timezone(load_default="UTC")
    job = _job(required=True)
    enabled = StrictBoolean(load_default=True)
    overlap = _choice(OVERLAP, OVERLAP_TEXT, load_default="allow")
    catch_up = _choice(CATCH_UP, CATCH_UP_TEXT, load_default="one")


class ScheduleUpdateSchema(_ScheduleBody):
    """Any of the fields; `cron` or `interval_seconds` replaces the cadence."""

    OPENAPI_EXTRA = {"not": {"required": ["cron", "interval_seconds"]}}

    name = _name()
    cron = _cron()
    interval_seconds = _interval()
    timezone = _timezone()
    job = _job()
    enabled = StrictBoolean()
    overlap = _choice(OVERLAP, OVERLAP_TEXT)
    catch_up = _choice(CATCH_UP, CATCH_UP_TEXT)


class ScheduleSchema(ma.Schema):
    id = ma.fields.String(required=True, metadata={"example": "sch_01jd4b2v6v3cz8f0f2m9k7q1xw"})
    name = ma.fields.String(required=True)
    cron = ma.fields.String(required=True, allow_none=True)
    interval_seconds = ma.fields.Integer(required=True, allow_none=True)
    timezone = ma.fields.String(required=True)
    job = _job(required=True)
    enabled = ma.fields.Boolean(required=True)
    overlap = ma.fields.String(required=True, metadata={"enum": list(OVERLAP)})
    catch_up = ma.fields.String(required=True, metadata={"enum": list(CATCH_UP)})
    next_run_at = Timestamp(
        required=True, allow_none=True, metadata={"description": "Null while disabled."}
    )
    last_run_at = Timestamp(
        required=True, allow_none=True, metadata={"description": "The slot of the last run."}
    )
    last_job_id = ma.fields.String(required=True, allow_none=True)
    created_at = Timestamp(required=True)


SchedulePageSchema = page_schema(ScheduleSchema, "SchedulePage")
