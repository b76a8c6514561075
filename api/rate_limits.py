"""Rate limits (Flask-Limiter): per API key across all routes, a stricter bucket shared by the
creating routes, and per client address for failed authentications. Redis stores the counters
(moving window); with no Redis, or while it is down, they are kept in process (fail open, and a
log line says so)."""

from __future__ import annotations

from typing import Any

import structlog
from flask import Flask, Response, current_app, g, request
from flask_limiter import ApplicationLimit, HeaderNames, Limiter
from limits import parse_many

from api.problems import problem

log = structlog.get_logger(__name__)

EXTENSION = "hopper_limiter"
# Short timeouts: a Redis that hangs must not hold requests (the limiter then fails open).
_REDIS_OPTIONS = {"socket_connect_timeout": 0.25, "socket_timeout": 0.25}
_LIMITER_RETRY_AFTER = "X-Hopper-Limiter-Retry-After"  # never sent: see below
CREATING_ENDPOINTS = frozenset(
    {"jobs.JobCollection", "jobs.JobBatch", "webhooks.Endpoints", "keys.Keys"}
)


def _settings() -> Any:
    return current_app.extensions["hopper"].settings


def bucket() -> str:
    """The API key the request authenticated with; otherwise the client's address."""
    principal = g.get("principal")
    return f"key:{principal.key_id}" if principal is not None else f"ip:{request.remote_addr}"


def _not_creating() -> bool:
    return request.method != "POST" or request.endpoint not in CREATING_ENDPOINTS


def init(app: Flask, redis_url: str | None) -> Limiter:
    app.config.update(
        RATELIMIT_STORAGE_URI=redis_url or "memory://",
        RATELIMIT_STORAGE_OPTIONS=_REDIS_OPTIONS if redis_url else {},
    )
    limiter = Limiter(
        key_func=bucket,
        header_name_mapping={HeaderNames.RETRY_AFTER: _LIMITER_RETRY_AFTER},
        application_limits=[
            ApplicationLimit(limit_provider=lambda: _settings().rate_limit_default, scope="all"),
            ApplicationLimit(
                limit_provider=lambda: _settings().rate_limit_create,
                scope="create",
                exempt_when=_not_creating,
            ),
        ],
        headers_enabled=True,
        strategy="moving-window",
        swallow_errors=True,
        in_memory_fallback_enabled=True,
    )
    # Health checks, metrics and docs are for operators and load balancers: not limited.
    limiter.request_filter(lambda: not request.path.startswith("/v1/"))
    app.after_request(_retry_after_only_when_limited)  # runs after the limiter's own hook
    limiter.init_app(app)
    app.extensions[EXTENSION] = limiter
    return limiter


def _retry_after_only_when_limited(response: Response) -> Response:
    """Flask-Limiter writes a Retry-After on every answer, over the view's own (a job read's
    poll hint); ours says "try again" only on a 429."""
    value = response.headers.pop(_LIMITER_RETRY_AFTER, None)
    if response.status_code == 429 and value is not None:
        response.headers["Retry-After"] = value
    return response


def failed_authentication(reason: str) -> Any:
    """Count, log and limit failed authentications by address (no row each: they are noise an
    attacker controls). Returns a 429 answer once the address is over its limit."""
    address = request.remote_addr or "unknown"
    log.warning("authentication_failed", ip=address, reason=reason, path=request.path)
    items = parse_many(_settings().rate_limit_auth_failures)
    try:
        store = current_app.extensions[EXTENSION].limiter
        over = [item for item in items if not store.hit(item, "auth-failures", address)]
    except Exception as exc:  # the limit store is away: serve, and say so
        log.warning("rate_limit_store_unavailable", error=type(exc).__name__)
        return None
    if not over:
        return None
    headers = {"Retry-After": str(over[0].get_expiry()), "X-RateLimit-Limit": str(over[0].amount)}
    headers |= {"X-RateLimit-Remaining": "0"}
    return problem(
        429, "Too many failed authentications from this address; try later.", headers=headers
    )
