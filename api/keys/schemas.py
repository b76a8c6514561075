"""Request and response schemas of API keys."""

import marshmallow as ma

from api.fields import UtcDateTime
from api.pagination import page_schema
from domain.representation import Timestamp


class KeyCreateSchema(ma.Schema):
    name = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=200))
    role = ma.fields.String(
        required=True, validate=ma.validate.OneOf(["reader", "submitter", "admin"])
    )
    expires_at = UtcDateTime(
        load_default=None,
        allow_none=True,
        metadata={"description": "Must be in the future; null (the default) means never."},
    )


class KeySchema(ma.Schema):
    id = ma.fields.String(required=True)
    name = ma.fields.String(required=True)
    role = ma.fields.String(required=True, metadata={"enum": ["reader", "submitter", "admin"]})
    prefix = ma.fields.String(
        required=True, metadata={"description": "The key's first characters, to recognise it."}
    )
    created_at = Timestamp(required=True)
    expires_at = Timestamp(required=True, allow_none=True)
    last_used_at = Timestamp(
        required=True, allow_none=True, metadata={"description": "To the minute."}
    )
    revoked_at = Timestamp(required=True, allow_none=True)


class NewKeySchema(KeySchema):
    key = ma.fields.String(required=True, metadata={"description": "Shown only in this answer."})


class AuditEventSchema(ma.Schema):
    id = ma.fields.String(required=True)
    at = Timestamp(required=True)
    action = ma.fields.String(required=True)
    actor_key_id = ma.fields.String(required=True, allow_none=True)
    target_type = ma.fields.String(required=True)
    target_id = ma.fields.String(required=True)
    ip = ma.fields.String(required=True, allow_none=True)
    request_id = ma.fields.String(required=True, allow_none=True)
    details = ma.fields.Dict(required=True)


KeyPageSchema = page_schema(KeySchema, "ApiKeyPage")
AuditPageSchema = page_schema(AuditEventSchema, "AuditEventPage")
