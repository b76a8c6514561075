"""Each request tells the wiring whose reads it makes (its key) and whether they must see the
newest state (writes, long-polls, ``If-None-Match``): with a replica configured, reads that may
go there do (``hopper.read_routing``). Without one, these hooks do nothing."""

from __future__ import annotations

from flask import Flask, current_app, g, request

SAFE_METHODS = frozenset({"GET", "HEAD"})


def init(app: Flask) -> None:
    if getattr(app.extensions["hopper"], "replica", None) is None:
        return
    app.before_request(_begin)
    app.teardown_request(_end)


def _begin() -> None:
    """before_request, after authentication."""
    principal = g.get("principal")
    newest = (
        request.method not in SAFE_METHODS
        or "wait" in request.args
        or "If-None-Match" in request.headers
    )
    current_app.extensions["hopper"].replica.begin(
        principal.key_id if principal is not None else None, primary_only=newest
    )


def _end(_exc: BaseException | None) -> None:
    current_app.extensions["hopper"].replica.end()
