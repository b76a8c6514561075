"""Request and response schemas of the webhook endpoints resource."""

from __future__ import annotations

import marshmallow as ma

from api.fields import FullMatch, StrictBoolean
from api.pagination import page_schema
from domain.representation import Timestamp
from domain.url_form import HTTP_URL_PATTERN as WEBHOOK_URL_PATTERN
from domain.webhooks.model import EVENT_TYPES

_JOB_EVENT_TYPES = [t for t in EVENT_TYPES if t != "webhook.test"]


def _unique(values: list[str]) -> None:
    if len(set(values)) != len(values):
        raise ma.ValidationError("List each value once.")


def _event_types() -> ma.fields.List:
    return ma.fields.List(
        ma.fields.String(validate=ma.validate.OneOf(_JOB_EVENT_TYPES)),
        allow_none=True,
        validate=[ma.validate.Length(min=1, max=len(_JOB_EVENT_TYPES)), _unique],
        metadata={
            "description": "Event types to send; null (the default) means all.",
            "uniqueItems": True,
        },
    )


def _job_types() -> ma.fields.List:
    return ma.fields.List(
        ma.fields.String(validate=ma.validate.Length(min=1, max=100)),
        allow_none=True,
        validate=[ma.validate.Length(min=1, max=100), _unique],
        metadata={
            "description": "Job types whose events to send; null (the default) means all.",
            "uniqueItems": True,
        },
    )


def _url(required: bool) -> ma.fields.String:
    return ma.fields.String(
        required=required,
        validate=[
            ma.validate.Length(min=1, max=2048),
            FullMatch(
                WEBHOOK_URL_PATTERN,
                error="Not an absolute http(s) URL (RFC 3986; a host name in ASCII, punycode "
                "for an international one; no user name, password or fragment).",
            ),
        ],
        metadata={
            "description": "Where deliveries are POSTed (https; plain http only if allowed)."
        },
    )


class EndpointCreateSchema(ma.Schema):
    url = _url(True)
    description = ma.fields.String(load_default="", validate=ma.validate.Length(max=500))
    event_types = _event_types()
    job_types = _job_types()
    enabled = StrictBoolean(load_default=True)


class EndpointUpdateSchema(ma.Schema):
    url = _url(False)
    description = ma.fields.String(validate=ma.validate.Length(max=500))
    event_types = _event_types()
    job_types = _job_types()
    enabled = StrictBoolean()


class EndpointSchema(ma.Schema):
    id = ma.fields.String(required=True)
    url = ma.fields.String(required=True)
    description = ma.fields.String(required=True)
    event_types = ma.fields.List(ma.fields.String(), required=True, allow_none=True)
    job_types = ma.fields.List(ma.fields.String(), required=True, allow_none=True)
    enabled = ma.fields.Boolean(required=True)
    disabled_reason = ma.fields.String(required=True, allow_none=True)
    created_at = Timestamp(required=True)
    updated_at = Timestamp(required=True)


class EndpointWithSecretSchema(EndpointSchema):
    secret = ma.fields.String(
        required=True, metadata={"description": "Shown only here: store it to verify deliveries."}
    )


class AttemptLogSchema(ma.Schema):
    at = Timestamp(required=True)
    status_code = ma.fields.Integer(required=True, allow_none=True)
    duration_ms = ma.fields.Integer(required=True)
    error = ma.fields.String(required=True, allow_none=True)
    response_excerpt = ma.fields.String(required=True)


class DeliverySchema(ma.Schema):
    id = ma.fields.String(required=True)
    event_id = ma.fields.String(required=True)
    event_type = ma.fields.String(required=True)
    status = ma.fields.String(required=True, metadata={"enum": ["pending", "succeeded", "failed"]})
    attempts = ma.fields.Integer(required=True)
    next_attempt_at = Timestamp(required=True, allow_none=True)
    created_at = Timestamp(required=True)
    attempt_log = ma.fields.List(ma.fields.Nested(AttemptLogSchema), required=True)


class TestEventSchema(ma.Schema):
    event_id = ma.fields.String(required=True)


EndpointPageSchema = page_schema(EndpointSchema, "WebhookEndpointPage")
DeliveryPageSchema = page_schema(DeliverySchema, "DeliveryPage")
