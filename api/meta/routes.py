"""Liveness, readiness and the docs page: no key needed."""

from __future__ import annotations

from flask import Blueprint, Response, current_app

from api.meta.metrics import exposition
from api.problems import problem
from api.responses import json_response

blp = Blueprint("meta", __name__)


@blp.get("/healthz")
def healthz() -> Response:
    """The process is alive. Touches nothing."""
    return json_response({"status": "ok"})


@blp.get("/readyz")
def readyz() -> Response:
    """Ready when the database answers; the broker and Redis are reported but do not fail it,
    since jobs are still accepted without them."""
    checks = current_app.extensions["hopper"].health()
    if checks["database"] != "ok":
        return problem(503, "The database does not answer.", title="Not ready")
    return json_response({"status": "ready", "checks": checks})


@blp.get("/metrics")
def metrics() -> Response:
    """Prometheus text: queue depths and ages, running jobs, pending deliveries."""
    body, content_type = exposition(current_app.extensions["hopper"].metrics)
    return Response(body, mimetype=None, content_type=content_type)
