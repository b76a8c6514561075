"""Rate limits: per API key across all routes, a stricter bucket shared by the creating routes,
the same two again per tenant across all of its keys (so that minting keys buys no allowance),
and per client address for failed authentications. One call to Redis a request checks and
counts all of a request's limits (``api.rate_counter``: a sliding-window counter). With no Redis,
or while it is down, they are counted in process instead (fail open, and a log line says so)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

import redis
import structlog
from flask import Flask, Response, current_app, g, request

from api.meta.instruments import RATE_LIMIT_FAIL_OPEN, RATE_LIMIT_REFUSALS
from api.problems import problem
from api.rate_counter import Limit, MemoryCounter, RedisCounter, Verdict

log = structlog.get_logger(__name__)

EXTENSION = "hopper_limiter"
# Short timeouts: a Redis that hangs must not hold requests (the limiter then fails open).
_REDIS_OPTIONS = {"socket_connect_timeout": 0.25, "socket_timeout": 0.25}
CREATING_ENDPOINTS = frozenset(
    {"jobs.JobCollection", "jobs.JobBatch", "webhooks.Endpoints", "keys.Keys"}
)
_WARN_EVERY_SECONDS = 10.0


@dataclass
class Limiter:
    every_route: list[Limit]
    creating: list[Limit]
    auth_failures: list[Limit]
    redis: RedisCounter | None
    tenant_every_route: list[Limit] = field(default_factory=list)
    tenant_creating: list[Limit] = field(default_factory=list)
    memory: MemoryCounter = field(default_factory=MemoryCounter)
    _warned_at: float = -_WARN_EVERY_SECONDS
    _failing_open_since: float | None = None  # counted up to here in the fail-open metric
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def check(self, checks: list[tuple[str, Limit]]) -> Verdict:
        if self.redis is not None:
            try:
                verdict = self.redis.check(checks)
            except redis.RedisError as exc:  # the store is away: count here, and say so
                self._warn(exc)
                self._failing_open(still=True)
            else:
                self._failing_open(still=False)
                return verdict
        return self.memory.check(checks)

    def _failing_open(self, still: bool) -> None:
        """Adds the time since the last check to the fail-open seconds while Redis is away,
        up to the first check it answers again."""
        with self._lock:
            now = time.monotonic()
            if self._failing_open_since is not None:
                RATE_LIMIT_FAIL_OPEN.inc(now - self._failing_open_since)
            self._failing_open_since = now if still else None

    def _warn(self, exc: Exception) -> None:
        if time.monotonic() - self._warned_at >= _WARN_EVERY_SECONDS:
            self._warned_at = time.monotonic()
            log.warning("rate_limit_store_unavailable", error=type(exc).__name__)


def init(app: Flask, redis_url: str | None) -> Limiter:
    settings = app.extensions["hopper"].settings
    store = RedisCounter(redis.Redis.from_url(redis_url, **_REDIS_OPTIONS)) if redis_url else None
    limiter = Limiter(
        Limit.parse(settings.rate_limit_default),
        Limit.parse(settings.rate_limit_create),
        Limit.parse(settings.rate_limit_auth_failures),
        store,
        tenant_every_route=Limit.parse(
            settings.rate_limit_tenant_default or settings.rate_limit_default
        ),
        tenant_creating=Limit.parse(
            settings.rate_limit_tenant_create or settings.rate_limit_create
        ),
    )
    app.extensions[EXTENSION] = limiter
    app.before_request(check)
    app.after_request(_headers)
    return limiter


def _limiter() -> Limiter:
    found: Limiter = current_app.extensions[EXTENSION]
    return found


def bucket() -> str:
    """The API key the request authenticated with; otherwise the client's address."""
    principal = g.get("principal")
    return f"key:{principal.key_id}" if principal is not None else f"ip:{request.remote_addr}"


def check() -> Any:
    """before_request, after authentication. Health checks, metrics and docs are for operators
    and load balancers: not limited."""
    if not request.path.startswith("/v1/"):
        return None
    limiter, name = _limiter(), bucket()
    checks = [(f"{name}:all", limit) for limit in limiter.every_route]
    creating = request.method == "POST" and request.endpoint in CREATING_ENDPOINTS
    if creating:
        checks += [(f"{name}:create", limit) for limit in limiter.creating]
    principal = g.get("principal")
    if principal is not None:
        tenant = f"tenant:{principal.tenant_id}"
        checks += [(f"{tenant}:all", limit) for limit in limiter.tenant_every_route]
        if creating:
            checks += [(f"{tenant}:create", limit) for limit in limiter.tenant_creating]
    verdict = limiter.check(checks)
    g.rate_verdict = verdict
    if verdict.allowed:
        return None
    RATE_LIMIT_REFUSALS.labels(_refusing_limit(checks, verdict)).inc()
    return _refused(verdict, "Too many requests; try later.")


def _refusing_limit(checks: list[tuple[str, Limit]], verdict: Verdict) -> str:
    """``creating`` when the creating routes' bucket is spent, else ``every_route``."""
    spent = [
        name
        for (name, _), count in zip(checks, verdict.counts, strict=False)
        if not count.remaining
    ]
    return "creating" if any(name.endswith(":create") for name in spent) else "every_route"


def _headers(response: Response) -> Response:
    verdict: Verdict | None = g.pop("rate_verdict", None)
    if verdict is not None:
        response.headers.update(_described(verdict))
    return response


def _described(verdict: Verdict) -> dict[str, str]:
    count = verdict.tightest()
    return {
        "X-RateLimit-Limit": str(count.limit.amount),
        "X-RateLimit-Remaining": str(count.remaining),
        "X-RateLimit-Reset": str(count.reset_at),
    }


def _refused(verdict: Verdict, detail: str) -> Response:
    count = verdict.tightest()
    return problem(429, detail, headers={"Retry-After": str(count.retry_after())})


def failed_authentication(reason: str) -> Any:
    """Count, log and limit failed authentications by address (no row each: they are noise an
    attacker controls). Returns a 429 answer once the address is over its limit."""
    address = request.remote_addr or "unknown"
    log.warning("authentication_failed", ip=address, reason=reason, path=request.path)
    limiter = _limiter()
    verdict = limiter.check([(f"ip:{address}:auth-failures", lim) for lim in limiter.auth_failures])
    if verdict.allowed:
        return None
    RATE_LIMIT_REFUSALS.labels("auth_failures").inc()
    answer = _refused(verdict, "Too many failed authentications from this address; try later.")
    answer.headers.update(_described(verdict))
    return answer
