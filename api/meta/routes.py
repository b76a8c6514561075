"""Liveness, readiness and metrics: no key needed."""

from __future__ import annotations

import marshmallow as ma
from flask import Response, current_app

from api.json_body import HopperBlueprint
from api.meta.metrics import exposition
from api.problems import problem
from api.responses import json_response

blp = HopperBlueprint("meta", __name__, description="The service itself; no key needed.")
NO_KEY = {"security": []}


class HealthSchema(ma.Schema):
    status = ma.fields.String(required=True, metadata={"enum": ["ok"]})


class ReadySchema(ma.Schema):
    status = ma.fields.String(required=True, metadata={"enum": ["ready"]})
    checks = ma.fields.Dict(
        keys=ma.fields.String(),
        values=ma.fields.String(),
        required=True,
        metadata={
            "description": "`database`, `broker` and `redis`: `ok`, `not configured`, or "
            "`unavailable: <reason>`. Only the database decides readiness."
        },
    )


@blp.route("/healthz", methods=["GET"])
@blp.doc(**NO_KEY)
@blp.response(200, HealthSchema)
def healthz() -> Response:
    """The process is alive. Touches nothing."""
    return json_response({"status": "ok"})


@blp.route("/readyz", methods=["GET"])
@blp.doc(**NO_KEY)
@blp.response(200, ReadySchema)
def readyz() -> Response:
    """Ready when the database answers (else 503). The broker and Redis are reported but do not
    fail it, since jobs are still accepted without them."""
    checks = current_app.extensions["hopper"].health()
    if checks["database"] != "ok":
        return problem(503, "The database does not answer.", title="Not ready")
    return json_response({"status": "ready", "checks": checks})


@blp.route("/metrics", methods=["GET"])
@blp.doc(**NO_KEY)
@blp.response(
    200,
    {"type": "string"},
    content_type="text/plain",
    description="Prometheus text: queue depths and ages, running jobs, pending deliveries.",
)
def metrics() -> Response:
    """Prometheus metrics"""
    body, content_type = exposition(current_app.extensions["hopper"].metrics)
    return Response(body, mimetype=None, content_type=content_type)
