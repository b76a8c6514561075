"""Request hygiene around every view: request ids and the log context, CORS preflights, then
security and CORS headers and one access-log line per response. (Body checks: ``api.body``.)"""

from __future__ import annotations

import re
import time
import uuid

import structlog
from flask import Response, current_app, g, request

log = structlog.get_logger(__name__)

_SANE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:@/+=-]{1,128}$")
_ASSIGNED = "hopper.request_id_assigned"

API_PREFIX = "/v1"
DOCS_PREFIX = "/docs"
API_CSP = "default-src 'none'; frame-ancestors 'none'"
# Swagger UI: its scripts, styles and images come from the app; its page has one inline script
# and its widgets use inline styles.
DOCS_CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
    "script-src 'self' 'unsafe-inline'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}
CORS_ALLOW_METHODS = "GET, HEAD, POST, PATCH, DELETE"
CORS_ALLOW_HEADERS = "Authorization, Content-Type, Idempotency-Key, X-Request-Id, If-None-Match"
CORS_EXPOSE_HEADERS = (
    "X-Request-Id, Location, ETag, Retry-After, X-RateLimit-Limit, X-RateLimit-Remaining, "
    "X-RateLimit-Reset, Idempotent-Replayed, Link"
)
CORS_MAX_AGE = "600"


def assign_request_id() -> None:
    """before_request: the request's id, its start, and a fresh log context that carries the id
    (a server thread serves many requests). Runs once however often it is called."""
    if _ASSIGNED in request.environ:
        return
    request.environ[_ASSIGNED] = True
    g.started = time.perf_counter()
    offered = request.headers.get("X-Request-Id", "")
    g.request_id = offered if _SANE_REQUEST_ID.match(offered) else f"req_{uuid.uuid4().hex}"
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(request_id=g.request_id)


def preflight() -> Response | None:
    """before_request, ahead of authentication (a browser sends no credentials on a preflight):
    answer a CORS preflight from an allowed origin. Any other request, and a preflight from
    another origin, goes on as usual."""
    if request.method != "OPTIONS" or "Access-Control-Request-Method" not in request.headers:
        return None
    if _allowed_origin() is None:
        return None
    assign_request_id()
    response = Response(status=204)
    response.headers["Access-Control-Allow-Methods"] = CORS_ALLOW_METHODS
    response.headers["Access-Control-Allow-Headers"] = CORS_ALLOW_HEADERS
    response.headers["Access-Control-Max-Age"] = CORS_MAX_AGE
    return response


def finish(response: Response) -> Response:
    """after_request: the request id, security and CORS headers, the access-log line."""
    response.headers["X-Request-Id"] = g.get("request_id", "")
    _security_headers(response)
    _cors_headers(response)
    _access_log(response)
    return response


def _security_headers(response: Response) -> None:
    headers = response.headers
    for name, value in SECURITY_HEADERS.items():
        headers.setdefault(name, value)
    path = request.path
    docs = path == DOCS_PREFIX or path.startswith(DOCS_PREFIX + "/")
    headers.setdefault("Content-Security-Policy", DOCS_CSP if docs else API_CSP)
    if path == API_PREFIX or path.startswith(API_PREFIX + "/"):
        # Tenant data: no cache may keep it, unless the view said otherwise.
        headers.setdefault("Cache-Control", "no-store")


def _cors_headers(response: Response) -> None:
    if not current_app.extensions["hopper"].settings.cors_origins:
        return
    response.vary.add("Origin")  # the answer depends on the Origin, for any cache in between
    origin = _allowed_origin()
    if origin is None:
        return
    response.headers["Access-Control-Allow-Origin"] = origin
    response.headers["Access-Control-Expose-Headers"] = CORS_EXPOSE_HEADERS


def _allowed_origin() -> str | None:
    origin = request.headers.get("Origin")
    if origin and origin in current_app.extensions["hopper"].settings.cors_origins:
        return origin
    return None


def _access_log(response: Response) -> None:
    started = g.get("started")
    duration_ms = None if started is None else round((time.perf_counter() - started) * 1000, 2)
    bind_principal()  # a 403 never reached check_body
    log.info(
        "http_request",
        method=request.method,
        path=request.path,
        status=response.status_code,
        duration_ms=duration_ms,
    )
    structlog.contextvars.clear_contextvars()


def bind_principal() -> None:
    principal = g.get("principal")
    if principal is not None:
        structlog.contextvars.bind_contextvars(tenant_id=principal.tenant_id)
