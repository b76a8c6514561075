"""Request and response schemas of the jobs resource."""

import marshmallow as ma

from api.fields import FullMatch, UtcDateTime
from api.pagination import PageQuery, page_schema
from domain.ids import ULID_PATTERN
from domain.representation import AttemptSchema, JobSchema

__all__ = ["AttemptSchema", "JobSchema"]

_STATUSES = ["queued", "running", "succeeded", "failed", "canceled"]


def _key(what: str) -> ma.fields.String:
    return ma.fields.String(
        load_default=None,
        allow_none=True,
        validate=ma.validate.Length(min=1, max=200),
        metadata={"description": f"Of the caller's tenant: {what}"},
    )


class JobCreateSchema(ma.Schema):
    type = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=100))
    payload = ma.fields.Dict(
        load_default=dict,
        metadata={
            "description": "Validated against the type's payload schema (see GET /v1/job-types)."
        },
    )
    priority = ma.fields.String(
        load_default="normal", validate=ma.validate.OneOf(["high", "normal", "low"])
    )
    run_at = UtcDateTime(load_default=None, allow_none=True)
    max_attempts = ma.fields.Integer(
        load_default=None, allow_none=True, strict=True, validate=ma.validate.Range(min=1, max=25)
    )
    timeout_seconds = ma.fields.Integer(
        load_default=None,
        allow_none=True,
        strict=True,
        validate=ma.validate.Range(min=1, max=86_400),
    )
    metadata = ma.fields.Dict(
        keys=ma.fields.String(validate=ma.validate.Length(min=1, max=40)),
        values=ma.fields.String(validate=ma.validate.Length(max=500)),
        load_default=dict,
        validate=ma.validate.Length(max=16),
        metadata={"description": "Up to 16 keys (≤ 40 characters) with string values (≤ 500)."},
    )
    concurrency_key = _key(
        "at most the key's limit of its jobs run at once (PUT /v1/concurrency-limits/{key}, "
        "else the type's concurrency_limit)."
    )
    rate_key = _key(
        "its jobs start no faster than the key's rate (PUT /v1/rate-limits/{key}, else the "
        "type's rate_limit), in submit order."
    )


class JobBatchSchema(ma.Schema):
    jobs = ma.fields.List(
        ma.fields.Nested(JobCreateSchema),
        required=True,
        validate=ma.validate.Length(min=1, max=500),
    )


class JobBatchResultSchema(ma.Schema):
    data = ma.fields.List(ma.fields.Nested(JobSchema), required=True)


class JobListQuery(PageQuery):
    status = ma.fields.String(load_default=None, validate=ma.validate.OneOf(_STATUSES))
    type = ma.fields.String(load_default=None, validate=ma.validate.Length(min=1, max=100))
    created_after = UtcDateTime(load_default=None)
    created_before = UtcDateTime(load_default=None)
    schedule_id = ma.fields.String(
        load_default=None,
        validate=FullMatch(f"^sch_{ULID_PATTERN}$", error="Not a schedule id."),
        metadata={"description": "Only the jobs that this schedule fired."},
    )


class JobGetQuery(ma.Schema):
    wait = ma.fields.Integer(
        load_default=0,
        validate=ma.validate.Range(min=0, max=30),
        metadata={
            "description": "Hold the request up to this many seconds until the job finishes."
        },
    )


class AttemptListSchema(ma.Schema):
    data = ma.fields.List(ma.fields.Nested(AttemptSchema), required=True)


JobPageSchema = page_schema(JobSchema, "JobPage")
