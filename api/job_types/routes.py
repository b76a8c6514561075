"""The registered job types and the JSON Schemas of their payloads and results."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Response, current_app
from flask.views import MethodView

from api.auth import requires
from api.json_body import HopperBlueprint
from api.openapi import add_attribute_functions
from api.responses import json_response
from domain.job_types import JobType
from domain.model import Role

blp = HopperBlueprint(
    "job_types", __name__, url_prefix="/v1/job-types", description="What jobs can be submitted."
)


class JobTypeSchema(ma.Schema):
    name = ma.fields.String(required=True)
    description = ma.fields.String(required=True)
    queue = ma.fields.String(required=True)
    default_timeout_seconds = ma.fields.Integer(required=True)
    default_max_attempts = ma.fields.Integer(required=True)
    concurrency_limit = ma.fields.Integer(
        required=True,
        allow_none=True,
        metadata={"description": "A concurrency key's limit when the tenant set none."},
    )
    rate_limit = ma.fields.String(
        required=True,
        allow_none=True,
        metadata={"description": "A rate key's rate when the tenant set none."},
    )
    payload_schema = ma.fields.Dict(required=True, metadata={"description": "JSON Schema"})
    result_schema = ma.fields.Dict(required=True, metadata={"description": "JSON Schema"})


class JobTypeListSchema(ma.Schema):
    data = ma.fields.List(ma.fields.Nested(JobTypeSchema), required=True)


def _converter() -> Any:
    plugin = MarshmallowPlugin()
    APISpec("job-types", "1", "3.0.3", plugins=[plugin])
    add_attribute_functions(plugin.converter)
    return plugin.converter


def describe(job_type: JobType, converter: Any) -> dict[str, Any]:
    return {
        "name": job_type.name,
        "description": job_type.description,
        "queue": job_type.queue,
        "default_timeout_seconds": job_type.default_timeout_seconds,
        "default_max_attempts": job_type.default_max_attempts,
        "concurrency_limit": job_type.concurrency_limit,
        "rate_limit": job_type.rate_limit,
        "payload_schema": converter.schema2jsonschema(job_type.payload_schema),
        "result_schema": converter.schema2jsonschema(job_type.result_schema),
    }


@blp.route("")
class JobTypes(MethodView):
    @requires(Role.READER)
    @blp.response(200, JobTypeListSchema)
    def get(self) -> Response:
        """List the job types"""
        container = current_app.extensions["hopper"]
        converter = _converter()
        return json_response({"data": [describe(t, converter) for t in container.registry]})
