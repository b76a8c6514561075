"""Request hygiene before a view runs: request ids, body size and content type."""

from __future__ import annotations

import re
import uuid
from typing import Any

from flask import Response, current_app, g, request

from api.problems import problem

_SANE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:@/+=-]{1,128}$")
BATCH_ENDPOINTS = frozenset({"jobs.JobBatch"})
DRAIN_LIMIT = 32 * 1024 * 1024


def assign_request_id() -> None:
    offered = request.headers.get("X-Request-Id", "")
    g.request_id = offered if _SANE_REQUEST_ID.match(offered) else f"req_{uuid.uuid4().hex}"


def check_body() -> Any:
    """413 for a body over the limit, 415 for a body that is not JSON (after auth, as ordered)."""
    if request.url_rule is None:
        return None
    settings = current_app.extensions["hopper"].settings
    limit = (
        settings.max_batch_body_bytes
        if request.endpoint in BATCH_ENDPOINTS
        else settings.max_body_bytes
    )
    request.max_content_length = limit
    length = request.content_length
    if length is not None and length > limit:
        _drain(length)
        return problem(
            413,
            f"The body is over the {limit} byte limit for this route.",
            headers={"Connection": "close"},
        )
    has_body = bool(length) or request.headers.get("Transfer-Encoding", "").lower() == "chunked"
    if has_body and request.method in ("POST", "PUT", "PATCH") and not request.is_json:
        return problem(415, "Send the body as application/json.")
    return None


def _drain(length: int) -> None:
    """Read and drop a moderately oversized body, so that the client, still sending it, gets the
    413 rather than a reset connection. A huge one is not read: the connection is closed."""
    if length > DRAIN_LIMIT:
        return
    stream = request.environ["wsgi.input"]
    remaining = length
    while remaining > 0:
        chunk = stream.read(min(remaining, 65536))
        if not chunk:
            break
        remaining -= len(chunk)


def finish(response: Response) -> Response:
    response.headers["X-Request-Id"] = g.get("request_id", "")
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    return response
