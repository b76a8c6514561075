"""RFC 9457 problem details: every error the API can produce, in one table."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import marshmallow as ma
import structlog
from flask import Flask, Response, g, json
from werkzeug.exceptions import HTTPException

from domain import errors as domain_errors
from domain.quotas import QuotaExceeded

log = structlog.get_logger(__name__)

PROBLEM_MEDIA_TYPE = "application/problem+json"
TYPE_BASE = "urn:hopper:problem:"

# status -> (slug, title) for errors raised as HTTP exceptions
HTTP_PROBLEMS: dict[int, tuple[str, str]] = {
    400: ("malformed-request", "Malformed request"),
    401: ("unauthenticated", "Unauthenticated"),
    403: ("forbidden", "Forbidden"),
    404: ("not-found", "Not found"),
    405: ("method-not-allowed", "Method not allowed"),
    409: ("conflict", "Conflict"),
    413: ("body-too-large", "Request body too large"),
    415: ("unsupported-media-type", "Unsupported media type"),
    422: ("validation-error", "Invalid request"),
    429: ("rate-limited", "Too many requests"),
    500: ("internal-error", "Internal error"),
    503: ("unavailable", "Service unavailable"),
}

# domain exception -> status
DOMAIN_STATUS: dict[type[domain_errors.DomainError], int] = {
    domain_errors.ValidationFailed: 422,
    domain_errors.AuthenticationFailed: 401,
    domain_errors.NotFound: 404,
    domain_errors.Conflict: 409,
    domain_errors.LeaseLost: 409,
    domain_errors.StorageUnavailable: 503,
    QuotaExceeded: 429,
}


class FieldErrorSchema(ma.Schema):
    field = ma.fields.String(required=True)
    message = ma.fields.String(required=True)


class ProblemSchema(ma.Schema):
    type = ma.fields.String(required=True)
    title = ma.fields.String(required=True)
    status = ma.fields.Integer(required=True)
    detail = ma.fields.String(required=True)
    request_id = ma.fields.String(required=True)
    errors = ma.fields.List(ma.fields.Nested(FieldErrorSchema))


def problem(
    status: int,
    detail: str,
    *,
    slug: str | None = None,
    title: str | None = None,
    errors: list[dict[str, str]] | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    default_slug, default_title = HTTP_PROBLEMS.get(status, ("error", "Error"))
    body: dict[str, Any] = {
        "type": TYPE_BASE + (slug or default_slug),
        "title": title or default_title,
        "status": status,
        "detail": detail,
        "request_id": g.get("request_id", ""),
    }
    if errors is not None:
        body["errors"] = errors
    response = Response(json.dumps(body), status=status, mimetype=PROBLEM_MEDIA_TYPE)
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def register(app: Flask) -> None:
    app.register_error_handler(HTTPException, _http_exception)
    app.register_error_handler(domain_errors.DomainError, _domain_error)
    app.register_error_handler(Exception, _unexpected)


def _http_exception(exc: HTTPException) -> Response:
    status = exc.code or 500
    data = getattr(exc, "data", None) or {}
    headers = dict(data.get("headers") or {})
    if status == 405 and exc.valid_methods:  # type: ignore[attr-defined]
        headers["Allow"] = ", ".join(sorted(exc.valid_methods))  # type: ignore[attr-defined]
    if status == 422:
        return problem(
            422,
            "The request has invalid fields.",
            errors=list(_field_errors(data.get("messages", {}))),
            headers=headers,
        )
    detail = _detail(status, exc, data)
    return problem(status, detail, headers=headers)


def _detail(status: int, exc: HTTPException, data: Mapping[str, Any]) -> str:
    if status == 400 and data.get("messages"):
        return "The body is not valid JSON."
    if status == 404:
        return "There is no such resource."
    if status == 405:
        return "The resource does not support this method."
    return exc.description or HTTP_PROBLEMS.get(status, ("", "Error"))[1]


def _domain_error(exc: domain_errors.DomainError) -> Response:
    status = next((s for kind, s in DOMAIN_STATUS.items() if isinstance(exc, kind)), 500)
    headers = {"WWW-Authenticate": 'Bearer realm="hopper"'} if status == 401 else None
    if status == 503:
        log.warning("storage_unavailable", error=str(exc.__cause__ or exc))
        headers = {"Retry-After": "5"}
    errors = None
    if isinstance(exc, domain_errors.ValidationFailed):
        errors = [{"field": e.field, "message": e.message} for e in exc.errors]
    slug = exc.slug if status not in (401, 404, 503) else None
    return problem(
        status,
        exc.detail,
        slug=slug,
        title=exc.title if slug else None,
        errors=errors,
        headers=headers,
    )


def _unexpected(exc: Exception) -> Response:
    log.exception("unhandled_error", error_type=type(exc).__name__)
    return problem(500, "Something went wrong on our side; the request id helps us find it.")


def _field_errors(messages: Mapping[str, Any]) -> Iterator[dict[str, str]]:
    for location, tree in messages.items():
        base = "" if location == "json" else location
        for path, text in _walk(tree, base):
            yield {"field": path or "body", "message": text}


def _walk(tree: Any, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(tree, Mapping):
        for key, value in tree.items():
            child = path if key == "_schema" else f"{path}.{key}" if path else str(key)
            yield from _walk(value, child)
    elif isinstance(tree, list | tuple):
        texts = [t for t in tree if isinstance(t, str)]
        if texts:
            yield path, " ".join(texts)
        for item in tree:
            if not isinstance(item, str):
                yield from _walk(item, path)
    else:
        yield path, str(tree)
