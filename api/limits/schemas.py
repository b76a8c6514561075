"""A tenant's limit of one concurrency key, and rate of one rate key."""

from __future__ import annotations

from typing import Any

import marshmallow as ma

from domain.dispatch.keys import MAX_LIMIT
from domain.representation import Timestamp


class ConcurrencyLimitInSchema(ma.Schema):
    limit = ma.fields.Integer(
        required=True,
        strict=True,
        validate=ma.validate.Range(min=1, max=MAX_LIMIT),
        metadata={"description": "At most this many jobs with the key run at once."},
    )


class ConcurrencyLimitSchema(ConcurrencyLimitInSchema):
    key = ma.fields.String(required=True)
    updated_at = Timestamp(required=True)


class RateLimitInSchema(ma.Schema):
    rate = ma.fields.String(
        required=True,
        validate=ma.validate.Regexp(r"^[1-9][0-9]{0,5}/(second|minute|hour)$"),
        metadata={
            "description": "`N/second`, `N/minute` or `N/hour` (N from 1 to 999,999): the key's "
            "jobs start at least 1/rate apart, in submit order.",
            "example": "10/second",
        },
    )


class RateLimitSchema(RateLimitInSchema):
    key = ma.fields.String(required=True)
    updated_at = Timestamp(required=True)


def limit_body(found: Any) -> dict[str, Any]:
    result: dict[str, Any] = ConcurrencyLimitSchema().dump(found)
    return result


def rate_body(found: Any) -> dict[str, Any]:
    result: dict[str, Any] = RateLimitSchema().dump(found)
    return result
