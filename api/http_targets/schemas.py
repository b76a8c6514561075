"""Request and response bodies of a tenant's ``http`` job settings."""

from __future__ import annotations

import marshmallow as ma

from api.fields import FullMatch
from domain.http_targets.service import MAX_ALLOWED_HOSTS
from domain.url_form import HOST_PATTERN


class TargetSecretSchema(ma.Schema):
    secret = ma.fields.String(
        required=True,
        metadata={
            "description": "Signs every request of the tenant's http jobs (Standard Webhooks). "
            "Shown only in this answer.",
            "example": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        },
    )


class AllowListSchema(ma.Schema):
    hosts = ma.fields.List(
        ma.fields.String(
            validate=[
                ma.validate.Length(min=1, max=253),
                FullMatch(
                    HOST_PATTERN,
                    error="Not a host name or an IP address (no scheme, port or path).",
                ),
            ]
        ),
        required=True,
        validate=ma.validate.Length(max=MAX_ALLOWED_HOSTS),
        metadata={
            "description": "Host names or IP addresses the tenant's http jobs may reach on "
            "private, loopback and link-local addresses."
        },
    )
