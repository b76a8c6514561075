"""Plugin job types for the loader's tests: one that works, and one of each way to be wrong.
Named by ``HOPPER_JOB_TYPES=tests.plugin_samples:NAME`` (and by a test's own entry point)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import marshmallow as ma

from hopper.plugin import JobContext, JobType


class ShoutPayload(ma.Schema):
    text = ma.fields.String(required=True, validate=ma.validate.Length(max=1000))


class ShoutResult(ma.Schema):
    text = ma.fields.String(required=True)


def shout(payload: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    return {"text": payload["text"].upper()}


SHOUT = JobType(
    name="sample_shout",
    description="Upper-cases its text.",
    queue="samples",
    payload_schema=ShoutPayload,
    result_schema=ShoutResult,
    handler=shout,
    default_timeout_seconds=10,
)
GOOD = [SHOUT]
WHISPER = replace(SHOUT, name="sample_whisper")


class BrokenSchema(ma.Schema):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise ValueError("this schema cannot be built")


NOT_A_TYPE = ["sample_shout"]
EMPTY: list[JobType] = []
CLASH = [replace(SHOUT, name="echo")]
TWICE = [SHOUT, replace(SHOUT, description="Another.")]
NOT_A_SCHEMA = [replace(SHOUT, payload_schema=dict)]
SCHEMA_THAT_DOES_NOT_BUILD = [replace(SHOUT, result_schema=BrokenSchema)]
BAD_NAME = [replace(SHOUT, name="Sample Shout")]
DELIVERIES_QUEUE = [replace(SHOUT, queue="webhooks")]
NOT_CALLABLE = [replace(SHOUT, handler="shout")]
TIMEOUT_TOO_LONG = [replace(SHOUT, default_timeout_seconds=86_401)]
NO_DESCRIPTION = [replace(SHOUT, description=" ")]
ATTEMPTS_AS_A_BOOL = [replace(SHOUT, default_max_attempts=True)]
TIMEOUT_AS_A_FLOAT = [replace(SHOUT, default_timeout_seconds=120.0)]
SECRET_FIELDS_AS_A_STRING = [replace(SHOUT, secret_fields="text")]
SECRET_FIELD_NOT_IN_THE_SCHEMA = [replace(SHOUT, secret_fields=("token",))]
PAYLOAD_THAT_DOES_NOT_BUILD = [replace(SHOUT, payload_schema=BrokenSchema, secret_fields=("text",))]
SECRET_TEXT = [replace(SHOUT, name="sample_secret_shout", secret_fields=("text",))]
