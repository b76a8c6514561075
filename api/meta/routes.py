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
    queues_without_consumer = ma.fields.List(
        ma.fields.String(),
        required=True,
        metadata={
            "description": "Queues with due work (jobs or webhook deliveries) that no worker "
            "consumes, where the broker can tell (RabbitMQ). They do not fail readiness: the "
            "work waits, safely, for a worker."
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
    """Ready when the database answers (else 503). The broker and Redis are reported, and so are
    queues with due work and no consumer, but they do not fail it: jobs are still accepted."""
    container = current_app.extensions["hopper"]
    checks = container.health()
    if checks["database"] != "ok":
        return problem(503, "The database does not answer.", title="Not ready")
    body = {"status": "ready", "checks": checks}
    return json_response(body | {"queues_without_consumer": container.starved_queues()})


@blp.route("/metrics", methods=["GET"])
@blp.doc(**NO_KEY)
@blp.response(
    200,
    {"type": "string"},
    content_type="text/plain",
    description="Prometheus text: queue depths and ages, consumers per queue, running jobs, "
    "pending deliveries.",
)
def metrics() -> Response:
    """Prometheus metrics"""
    container = current_app.extensions["hopper"]
    body, content_type = exposition(container.metrics, container.consumer_counts)
    return Response(body, mimetype=None, content_type=content_type)
