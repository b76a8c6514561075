"""Schedules: jobs submitted on a cron or an interval. Admins change them; readers read them."""

from __future__ import annotations

from typing import Any

from flask import Response, current_app
from flask.views import MethodView

from api.auth import principal, requires
from api.jobs.routes import submit_command
from api.json_body import HopperBlueprint
from api.links import link
from api.pagination import LINK_HEADER, PageQuery, add_link, page_body
from api.responses import json_response
from api.schedules.schemas import (
    ScheduleCreateSchema,
    SchedulePageSchema,
    ScheduleSchema,
    ScheduleUpdateSchema,
)
from domain.model import Role

blp = HopperBlueprint(
    "schedules",
    __name__,
    url_prefix="/v1/schedules",
    description="Jobs submitted on a cron or an interval, each slot once.",
)
_schedule = ScheduleSchema()
LOCATION = {"Location": {"required": True, "schema": {"type": "string"}}}


def _service() -> Any:
    return current_app.extensions["hopper"].schedules


def _fields(body: dict[str, Any]) -> dict[str, Any]:
    """The body as the service takes it: the job as the command that `POST /v1/jobs` makes."""
    return {**body, "job": submit_command(body["job"])} if "job" in body else body


@blp.route("")
class Schedules(MethodView):
    @requires(Role.ADMIN)
    @blp.arguments(ScheduleCreateSchema)
    @blp.response(201, ScheduleSchema, headers=LOCATION)
    def post(self, body: dict[str, Any]) -> Response:
        """Create a schedule (at most 1,000 a tenant; names are unique)"""
        schedule = _service().create(principal(), _fields(body))
        location = {"Location": link(f"/v1/schedules/{schedule.id}")}
        return json_response(_schedule.dump(schedule), 201, location)

    @requires(Role.READER)
    @blp.arguments(PageQuery, location="query")
    @blp.response(200, SchedulePageSchema, headers=LINK_HEADER)
    def get(self, query: dict[str, Any]) -> Response:
        """List schedules, newest first"""
        page = _service().list(principal(), query["limit"], query["cursor"])
        return add_link(json_response(page_body(page, _schedule)), page)


@blp.route("/<schedule_id>")
class ScheduleItem(MethodView):
    @requires(Role.READER)
    @blp.response(200, ScheduleSchema)
    def get(self, schedule_id: str) -> Response:
        """Get a schedule"""
        return json_response(_schedule.dump(_service().get(principal(), schedule_id)))

    @requires(Role.ADMIN)
    @blp.arguments(ScheduleUpdateSchema)
    @blp.response(200, ScheduleSchema)
    def patch(self, body: dict[str, Any], schedule_id: str) -> Response:
        """Change a schedule (a new cadence starts from now; enabling again does not catch up)"""
        schedule = _service().update(principal(), schedule_id, _fields(body))
        return json_response(_schedule.dump(schedule))

    @requires(Role.ADMIN)
    @blp.response(204)
    def delete(self, schedule_id: str) -> Response:
        """Delete a schedule (the jobs it fired stay)"""
        _service().delete(principal(), schedule_id)
        return Response(status=204)
