"""Liveness, readiness and metrics: no key needed."""

from __future__ import annotations

import marshmallow as ma
from flask import Response, current_app, request

from api.json_body import HopperBlueprint
from api.meta.metrics import exposition
from api.problems import problem
from api.responses import json_response
from domain.auth import bearer_matches

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
    description="Prometheus text: request durations, jobs submitted, rate-limit refusals, and, "
    "read from the database at the scrape, jobs waiting by reason and running per queue, the "
    "oldest due job's age, paused queues, pending deliveries, and consumers per queue. With "
    "`HOPPER_METRICS_PORT` set it is served there instead; with `HOPPER_METRICS_TOKEN`, only "
    "to `Authorization: Bearer <token>`.",
)
def metrics() -> Response:
    """Prometheus metrics"""
    container = current_app.extensions["hopper"]
    settings = container.settings
    if settings.metrics_port is not None and _local_port() != settings.metrics_port:
        return problem(404, "Metrics are served on the metrics port.", title="Not Found")
    header = request.headers.get("Authorization")
    if settings.metrics_token is not None and not bearer_matches(header, settings.metrics_token):
        return problem(401, "Metrics need the metrics token.", title="Unauthorized")
    body, content_type = exposition(container)
    return Response(body, mimetype=None, content_type=content_type)


@blp.before_app_request
def metrics_port_serves_metrics_only() -> Response | None:
    """On ``HOPPER_METRICS_PORT`` the web tier answers ``/metrics`` and nothing else."""
    port = current_app.extensions["hopper"].settings.metrics_port
    if port is None or request.path == "/metrics" or _local_port() != port:
        return None
    return problem(404, "Only /metrics is served on this port.", title="Not Found")


def _local_port() -> int | None:
    """The port the connection came in on (its socket's, not a header's: none can forge it)."""
    connection = request.environ.get("gunicorn.socket")
    if connection is None:
        return None
    try:
        return int(connection.getsockname()[1])
    except (OSError, IndexError, TypeError, ValueError):
        return None
