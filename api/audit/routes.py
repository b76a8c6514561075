"""Audit events: who did what, when, from where. Admin only, read-only."""

from __future__ import annotations

from typing import Any

from flask import Response, current_app
from flask.views import MethodView

from api.auth import principal, requires
from api.json_body import HopperBlueprint
from api.keys.schemas import AuditEventSchema, AuditPageSchema
from api.pagination import LINK_HEADER, PageQuery, add_link, page_body
from api.responses import json_response
from domain.model import Role

blp = HopperBlueprint(
    "audit", __name__, url_prefix="/v1/audit-events", description="The audit trail."
)
_event = AuditEventSchema()


@blp.route("")
class AuditEvents(MethodView):
    @requires(Role.ADMIN)
    @blp.arguments(PageQuery, location="query")
    @blp.response(200, AuditPageSchema, headers=LINK_HEADER)
    def get(self, query: dict[str, Any]) -> Response:
        """List audit events, newest first"""
        access = current_app.extensions["hopper"].access
        page = access.audit_events(principal(), query["limit"], query["cursor"])
        return add_link(json_response(page_body(page, _event)), page)
