"""The OpenAPI document: flask-smorest's, with each operation listing every problem (RFC 9457)
that it can answer, and the headers that its answers carry.

No operation has a ``default`` response: the statuses below are all that the API sends, so a
client (or a contract test) can tell a documented answer from an undocumented one.
"""

from __future__ import annotations

import re
from typing import Any

import marshmallow as ma
from apispec import APISpec, BasePlugin
from flask import Flask
from flask_smorest import Api
from flask_smorest.utils import prepare_response
from werkzeug.routing import Rule

from api.auth import PROTECTED_PREFIX, declared_role
from api.idempotency import HEADER as IDEMPOTENCY_KEY
from api.idempotency import REPLAYED
from api.jobs.schemas import JobCreateSchema
from api.problems import PROBLEM_MEDIA_TYPE, ProblemSchema
from domain.job_types import JobType
from domain.model import Role

_INTEGER = {"type": "integer", "minimum": 0}
_STRING = {"type": "string"}
HEADERS: dict[str, dict[str, Any]] = {
    "X-Request-Id": {
        "description": "The request's id: the client's, if it sent a sane one, else a new one.",
        "required": True,
        "schema": {"type": "string", "minLength": 1},
    },
    "WWW-Authenticate": {
        "description": "The Bearer challenge.",
        "required": True,
        "schema": _STRING,
    },
    "Retry-After": {
        "description": "Seconds to wait before trying again; on an answer that is not a "
        "problem, the seconds until the rate-limit window resets.",
        "schema": _INTEGER,
    },
    "X-RateLimit-Limit": {"description": "Requests allowed in the window.", "schema": _INTEGER},
    "X-RateLimit-Remaining": {"description": "Requests left in the window.", "schema": _INTEGER},
    "X-RateLimit-Reset": {"description": "When the window resets (Unix time).", "schema": _INTEGER},
    REPLAYED: {
        "description": "Present when this is the stored answer to an earlier request that had "
        "the same Idempotency-Key.",
        "schema": {"type": "string", "enum": ["true"]},
    },
}
# The rate limiter sets the X-RateLimit-* headers on every answer it has counted (Retry-After only
# on a 429; elsewhere it is the poll hint of an unfinished job).
RATE_LIMIT_HEADERS = (
    "X-RateLimit-Limit",
    "X-RateLimit-Remaining",
    "X-RateLimit-Reset",
    "Retry-After",
)

PROBLEMS: dict[int, str] = {
    400: "Malformed JSON in the body",
    401: "No valid API key",
    403: "The API key's role is too weak for this route",
    404: "No such resource in the API key's tenant",
    405: "The resource does not take this method (`/v1/jobs/batch` is the batch, not a job)",
    409: "The resource's state forbids this, its name is taken, or a request with the same "
    "Idempotency-Key is still in flight",
    413: "The body is over the size limit",
    414: "The request line is over the web server's limit",
    415: "A body sent with a content type other than application/json",
    422: "Invalid fields: `errors` names each one",
    429: "Over a rate limit",
    431: "The request's headers are over the web server's limit",
    500: "Internal error",
    501: "A transfer coding the web server does not implement",
    503: "A service the request needs (the database) does not answer",
}
# What the web server itself may answer, before the request reaches the API.
SERVER_PROBLEMS = (400, 414, 431, 501)
# Headers beside X-Request-Id. 401 and 403 are answered before the rate limits are counted, so
# they carry no X-RateLimit-* headers; everything after carries them.
PROBLEM_HEADERS: dict[int, tuple[str, ...]] = {
    401: ("WWW-Authenticate",),
    403: (),
}
_RETRY_AFTER_REQUIRED = {**HEADERS["Retry-After"], "required": True}

IDEMPOTENCY_PARAMETER = {
    "in": "header",
    "name": IDEMPOTENCY_KEY,
    "required": False,
    "description": "Makes a retry of this POST safe for 24 hours: the same key with the same "
    "body returns the first answer again, without doing anything again.",
    "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[ -~]+$"},
}

IF_NONE_MATCH_PARAMETER = {
    "in": "header",
    "name": "If-None-Match",
    "required": False,
    "description": "The ETag of the resource as last seen: 304 if it has not changed since.",
    "schema": {"type": "string"},
}


def response_name(status: int) -> str:
    return f"Problem{status}"


class HopperApi(Api):
    ERROR_SCHEMA = ProblemSchema
    DEFAULT_ERROR_RESPONSE_NAME = None  # each operation lists its problems instead

    def __init__(self, app: Flask) -> None:
        super().__init__(app, spec_kwargs={"extra_plugins": [DocumentedAnswers(app)]})
        add_attribute_functions(self.ma_plugin.converter)

    def _register_responses(self) -> None:
        for name, header in HEADERS.items():
            self.spec.components.header(name, header, lazy=True)
        self.spec.components.header("Retry-After-Required", _RETRY_AFTER_REQUIRED, lazy=True)
        for status, description in PROBLEMS.items():
            response: dict[str, Any] = {"description": description, "schema": self.ERROR_SCHEMA}
            prepare_response(response, self.spec, PROBLEM_MEDIA_TYPE)
            response["headers"] = _problem_headers(status)
            self.spec.components.response(response_name(status), response, lazy=True)
        # flask-smorest names the 422 of `@blp.arguments` after the status.
        unprocessable = {"description": PROBLEMS[422], "schema": self.ERROR_SCHEMA}
        prepare_response(unprocessable, self.spec, PROBLEM_MEDIA_TYPE)
        unprocessable["headers"] = _problem_headers(422)
        self.spec.components.response("UNPROCESSABLE_ENTITY", unprocessable, lazy=True)


def add_attribute_functions(converter: Any) -> None:
    """What every JSON Schema Hopper publishes adds to apispec's: the document's, and each job
    type's in `GET /v1/job-types`, so that the two say the same of a payload."""
    for attribute_function in (
        only_null_or_the_object,
        no_nul_in_text,
        object_sizes,
        own_json_schema,
    ):
        converter.add_attribute_function(attribute_function)


def only_null_or_the_object(_converter: Any, field: Any, ret: dict[str, Any]) -> dict[str, Any]:
    """A nullable nested object as apispec writes it for OpenAPI 3.0 is `anyOf: [{type: object,
    nullable: true}, {$ref}]`, which any object at all matches; the first branch is narrowed to
    null alone, so that a non-null value must be the referenced object."""
    branches = ret.get("anyOf")
    if not isinstance(branches, list) or {"type": "object", "nullable": True} not in branches:
        return {}
    loose = branches.index({"type": "object", "nullable": True})
    narrowed = [*branches]
    narrowed[loose] = {"type": "object", "nullable": True, "enum": [None]}
    return {"anyOf": narrowed}


# Text anywhere in a request may not hold NUL (PostgreSQL cannot store it): a body with one is
# malformed (400), a query value with one an invalid field (422).
NO_NUL = "^[^\\x00]*$"


def no_nul_in_text(_converter: Any, field: Any, ret: dict[str, Any]) -> dict[str, Any]:
    if ret.get("type") != "string" or "pattern" in ret or "enum" in ret or "format" in ret:
        return {}
    return {"pattern": NO_NUL}


def object_sizes(_converter: Any, field: Any, ret: dict[str, Any]) -> dict[str, Any]:
    """A `Length` on a dict bounds how many keys it has: `minProperties`/`maxProperties`, where
    apispec writes the string keywords; the keys' own rules are `propertyNames`."""
    if not isinstance(field, ma.fields.Dict):
        return {}
    sizes = {"minLength": "minProperties", "maxLength": "maxProperties"}
    found = {sizes[key]: ret.pop(key) for key in list(ret) if key in sizes}
    if field.key_field is not None:
        found["propertyNames"] = _converter.field2property(field.key_field)
    return found


def own_json_schema(_converter: Any, field: Any, ret: dict[str, Any]) -> dict[str, Any]:
    """A field that says its JSON Schema itself (`json_schema`), for what apispec cannot write
    from its validators: the `http` type's header maps, say."""
    return dict(getattr(field, "json_schema", None) or {})


def _problem_headers(status: int) -> dict[str, str]:
    names = ["X-Request-Id", *PROBLEM_HEADERS.get(status, RATE_LIMIT_HEADERS)]
    headers = {name: name for name in names}
    if status == 429:
        headers["Retry-After"] = "Retry-After-Required"
    return headers


class DocumentedAnswers(BasePlugin):
    """Completes each operation as flask-smorest registers it: the problems it can answer, the
    headers on every answer, the Idempotency-Key of every POST and the If-None-Match of every
    read that can answer 304."""

    def __init__(self, app: Flask) -> None:
        self._app = app
        self._spec: APISpec | None = None
        self._payloads: dict[type[ma.Schema], str] = {}  # a schema that two types share

    def init_spec(self, spec: APISpec) -> None:
        self._spec = spec

    def schema_helper(self, name: str, definition: dict[str, Any], **kwargs: Any) -> Any:
        """A job to submit is one of the registered types, told apart by `type`: each with the
        JSON Schema of its own payload, so that a client generated from the document gets typed
        payloads, and a type registered later appears by itself."""
        schema = kwargs.get("schema")
        extra = getattr(schema, "OPENAPI_EXTRA", None)  # what fields alone cannot say
        if extra is not None:
            return dict(extra)
        if schema is not JobCreateSchema and not isinstance(schema, JobCreateSchema):
            return None
        assert self._spec is not None
        common = {
            field: prop
            for field, prop in definition["properties"].items()
            if field not in ("type", "payload")
        }
        payload_description = definition["properties"]["payload"].get("description")
        variant = getattr(schema, "OPENAPI_VARIANT", "")  # a body that reuses the job's
        mapping = {
            job_type.name: self._typed_job(job_type, common, payload_description, variant)
            for job_type in self._app.extensions["hopper"].registry
        }
        definition.clear()
        return {
            "description": "A job of one of the registered types (GET /v1/job-types).",
            "oneOf": [{"$ref": ref} for ref in mapping.values()],
            "discriminator": {"propertyName": "type", "mapping": mapping},
        }

    def _typed_job(
        self,
        job_type: JobType,
        common: dict[str, Any],
        payload_description: str | None,
        variant: str = "",
    ) -> str:
        """The reference to the component of a job of this type, registered on first use."""
        assert self._spec is not None
        components = self._spec.components
        stem = "".join(part.capitalize() for part in re.split(r"[^A-Za-z0-9]+", job_type.name))
        job_name = f"{variant}{stem}Job"
        payload_name = self._payloads.setdefault(job_type.payload_schema, f"{stem}Payload")
        if payload_name not in components.schemas:
            components.schema(payload_name, schema=job_type.payload_schema)
        payload_required = any(f.required for f in job_type.payload_schema().fields.values())
        if job_name not in components.schemas:
            payload = components.get_ref("schema", payload_name)
            components.schema(
                job_name,
                {
                    "type": "object",
                    "description": job_type.description,
                    "properties": {
                        "type": {"type": "string", "enum": [job_type.name]},
                        "payload": {"allOf": [payload], "description": payload_description}
                        if payload_description
                        else payload,
                        **common,
                    },
                    "required": ["type", *(["payload"] if payload_required else [])],
                    "additionalProperties": False,
                },
            )
        ref: str = components.get_ref("schema", job_name)["$ref"]
        return ref

    def operation_helper(
        self,
        path: str | None = None,
        operations: dict[str, Any] | None = None,
        rule: Rule | None = None,
        **_: Any,
    ) -> None:
        if path is None or not operations or rule is None:
            return
        view = self._app.view_functions[rule.endpoint]
        for method, operation in operations.items():
            role = declared_role(view, method)
            responses = operation.setdefault("responses", {})
            for status in statuses(path, method, role, has_body="requestBody" in operation):
                if str(status) not in {str(code) for code in responses}:
                    responses[str(status)] = response_name(status)
            for code, response in responses.items():
                if isinstance(response, dict):
                    _add_headers(response, int(code), method, path)
            if method.upper() == "POST":
                operation.setdefault("parameters", []).append(dict(IDEMPOTENCY_PARAMETER))
            if "304" in {str(code) for code in responses}:
                operation.setdefault("parameters", []).append(dict(IF_NONE_MATCH_PARAMETER))
            if role is not None:
                operation["x-required-role"] = str(role)
            if role is not None and role is not Role.READER:
                note = f"Needs the `{role}` role."
                operation["description"] = f"{operation.get('description', '')}\n\n{note}".strip()


def statuses(path: str, method: str, role: Role | None, *, has_body: bool) -> list[int]:
    """The problems that an operation can answer, in the order the API checks for them."""
    method = method.upper()
    if not _protected(path):
        return _with_server([413, 500, 503])  # no key, and no rate limit either
    found = [401]
    if role is not None and role is not Role.READER:
        found.append(403)
    found.append(413)
    if method in ("POST", "PUT", "PATCH"):
        found.append(415)
    if has_body:
        found.append(400)
    if has_body or method == "POST":
        found.append(422)  # a POST's Idempotency-Key, reused with another body
    if "{" in path:
        found.append(404)
    if path.startswith(JOB_ITEM):
        found.append(405)  # the job id `batch` names the batch resource
    if method == "POST" or (method, path) in CONFLICTS:
        found.append(409)
    return _with_server([*found, 429, 500, 503])


JOB_ITEM = "/v1/jobs/{job_id}"
# Changes that are not POSTs and may still meet a conflict: a name another resource of the tenant
# has already, a job not finished yet, a limit another request sets at the same moment.
CONFLICTS = {
    ("PATCH", "/v1/schedules/{schedule_id}"),
    ("DELETE", JOB_ITEM),
    ("PUT", "/v1/concurrency-limits/{key}"),
    ("PUT", "/v1/rate-limits/{key}"),
}


def _with_server(found: list[int]) -> list[int]:
    return list(dict.fromkeys([*found, *SERVER_PROBLEMS]))


def _protected(path: str) -> bool:
    return path == PROTECTED_PREFIX or path.startswith(PROTECTED_PREFIX + "/")


def _add_headers(response: dict[str, Any], status: int, method: str, path: str) -> None:
    headers = response.setdefault("headers", {})
    for name in ("X-Request-Id", *(RATE_LIMIT_HEADERS if _protected(path) else ())):
        headers.setdefault(name, name)
    if method.upper() == "POST" and 200 <= status < 300:
        headers.setdefault(REPLAYED, REPLAYED)
