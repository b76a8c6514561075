"""Authentication and roles for everything under ``/v1``, enforced before any view runs.

Order, as the contract fixes it: no valid key 401 → role too weak 403 → unknown route 404 / wrong
method 405 → body problems → the view. Every ``/v1`` view method declares its role with
``@requires``; ``check_routes`` refuses to start an app where one does not.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from flask import Flask, current_app, g, request

from api import rate_limits
from api.problems import problem
from domain import audit
from domain.auth import Principal
from domain.errors import AuthenticationFailed
from domain.model import Role

F = TypeVar("F", bound=Callable[..., Any])
PROTECTED_PREFIX = "/v1"
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="hopper"'}


def requires(role: Role) -> Callable[[F], F]:
    def mark(view: F) -> F:
        view.required_role = role  # type: ignore[attr-defined]
        return view

    return mark


def principal() -> Principal:
    found: Principal = g.principal
    return found


def authenticate() -> Any:
    """before_request: establish ``g.principal`` or answer 401 / 403."""
    if not (request.path == PROTECTED_PREFIX or request.path.startswith(PROTECTED_PREFIX + "/")):
        return None
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return rate_limits.failed_authentication("no key") or problem(
            401, "Send an API key as `Authorization: Bearer <key>`.", headers=_CHALLENGE
        )
    try:
        g.principal = current_app.extensions["hopper"].access.authenticate(token.strip())
    except AuthenticationFailed as failure:
        challenge = {"WWW-Authenticate": 'Bearer realm="hopper", error="invalid_token"'}
        return rate_limits.failed_authentication(failure.detail) or problem(
            401, "The API key is not valid.", headers=challenge
        )
    audit.current_request.set(
        audit.RequestContext(g.principal.key_id, request.remote_addr, g.get("request_id"))
    )
    required = required_role()
    if required is not None and not g.principal.can(required):
        return problem(403, f"This route needs the {required} role.")
    return None


def required_role() -> Role | None:
    """The role the matched route needs, or None when nothing matched (404/405 follow)."""
    if request.url_rule is None or request.routing_exception is not None:
        return None
    view = current_app.view_functions.get(request.endpoint or "")
    method = "GET" if request.method == "HEAD" else request.method
    if method == "OPTIONS":
        return Role.READER
    return declared_role(view, method)


def declared_role(view: Any, method: str) -> Role | None:
    """The role that a view's handler of ``method`` declares with ``@requires``, if any."""
    handler = getattr(getattr(view, "view_class", None), method.lower(), view)
    role: Role | None = getattr(handler, "required_role", None)
    return role


def check_routes(app: Flask) -> None:
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith(PROTECTED_PREFIX):
            continue
        view = app.view_functions[rule.endpoint]
        for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}:
            if declared_role(view, method) is None:
                raise RuntimeError(f"{method} {rule.rule} declares no role (use @requires)")
