"""Queues as a tenant sees them: what waits and why, and pausing a queue for the tenant."""

from __future__ import annotations

from typing import Any

from flask import Response, current_app
from flask.views import MethodView

from api.auth import principal, requires
from api.json_body import HopperBlueprint
from api.queues.schemas import QueueListSchema, QueueSchema, queue_body
from api.responses import json_response
from domain.model import Role

blp = HopperBlueprint(
    "queues",
    __name__,
    url_prefix="/v1/queues",
    description="What waits in each queue and why; pausing a queue for the caller's tenant.",
)


def _service() -> Any:
    return current_app.extensions["hopper"].queue_control


@blp.route("")
class Queues(MethodView):
    @requires(Role.READER)
    @blp.response(200, QueueListSchema)
    def get(self) -> Response:
        """List the queues, with the caller's tenant's jobs in each"""
        views = _service().overview(principal().tenant_id)
        return json_response({"data": [queue_body(view) for view in views]})


@blp.route("/<name>/pause")
class PauseQueue(MethodView):
    @requires(Role.ADMIN)
    @blp.response(200, QueueSchema)
    def post(self, name: str) -> Response:
        """Pause a queue for the caller's tenant: its jobs are still accepted, and wait"""
        return json_response(queue_body(_service().pause(principal().tenant_id, name)))


@blp.route("/<name>/resume")
class ResumeQueue(MethodView):
    @requires(Role.ADMIN)
    @blp.response(200, QueueSchema)
    def post(self, name: str) -> Response:
        """Resume a queue for the caller's tenant: its waiting jobs run again"""
        return json_response(queue_body(_service().resume(principal().tenant_id, name)))
