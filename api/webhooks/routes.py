"""Webhook endpoints: admin only, tenant-scoped."""

from __future__ import annotations

from typing import Any

from flask import Response, current_app, g
from flask.views import MethodView

from api.auth import principal, requires
from api.json_body import HopperBlueprint
from api.links import link
from api.pagination import LINK_HEADER, PageQuery, add_link
from api.responses import json_response
from api.webhooks.schemas import (
    DeliveryPageSchema,
    DeliverySchema,
    EndpointCreateSchema,
    EndpointPageSchema,
    EndpointSchema,
    EndpointUpdateSchema,
    EndpointWithSecretSchema,
    TestEventSchema,
)
from domain.model import Role
from domain.services.webhooks import DeliveryView, EndpointWithSecret

blp = HopperBlueprint(
    "webhooks",
    __name__,
    url_prefix="/v1/webhook-endpoints",
    description="Where Hopper sends signed events (Standard Webhooks).",
)
_endpoint = EndpointSchema()
_with_secret = EndpointWithSecretSchema()
_delivery = DeliverySchema()
NO_STORE = {"Cache-Control": "no-store"}
LOCATION = {"Location": {"required": True, "schema": {"type": "string"}}}


def _service() -> Any:
    return current_app.extensions["hopper"].webhooks


def _secret_body(created: EndpointWithSecret) -> dict[str, Any]:
    body: dict[str, Any] = _endpoint.dump(created.endpoint)
    body["secret"] = created.secret
    return body


def _delivery_body(view: DeliveryView) -> dict[str, Any]:
    body: dict[str, Any] = _delivery.dump(view)
    return body


@blp.route("")
class Endpoints(MethodView):
    @requires(Role.ADMIN)
    @blp.arguments(EndpointCreateSchema)
    @blp.response(201, EndpointWithSecretSchema, headers=LOCATION)
    def post(self, body: dict[str, Any]) -> Response:
        """Create a webhook endpoint (its secret is shown only in this answer)"""
        created = _service().create(principal(), body)
        location = {"Location": link(f"/v1/webhook-endpoints/{created.endpoint.id}")}
        return json_response(_secret_body(created), 201, {**NO_STORE, **location})

    @requires(Role.ADMIN)
    @blp.arguments(PageQuery, location="query")
    @blp.response(200, EndpointPageSchema, headers=LINK_HEADER)
    def get(self, query: dict[str, Any]) -> Response:
        """List webhook endpoints, newest first"""
        page = _service().list(principal(), query["limit"], query["cursor"])
        body = {"data": _endpoint.dump(page.items, many=True), "next_cursor": page.next_cursor}
        return add_link(json_response(body), page)


@blp.route("/<endpoint_id>")
class EndpointItem(MethodView):
    @requires(Role.ADMIN)
    @blp.response(200, EndpointSchema)
    def get(self, endpoint_id: str) -> Response:
        """Get a webhook endpoint"""
        return json_response(_endpoint.dump(_service().get(principal(), endpoint_id)))

    @requires(Role.ADMIN)
    @blp.arguments(EndpointUpdateSchema)
    @blp.response(200, EndpointSchema)
    def patch(self, body: dict[str, Any], endpoint_id: str) -> Response:
        """Change a webhook endpoint"""
        return json_response(_endpoint.dump(_service().update(principal(), endpoint_id, body)))

    @requires(Role.ADMIN)
    @blp.response(204)
    def delete(self, endpoint_id: str) -> Response:
        """Delete a webhook endpoint and its deliveries"""
        _service().delete(principal(), endpoint_id)
        return Response(status=204)


@blp.route("/<endpoint_id>/rotate-secret")
class EndpointRotation(MethodView):
    @requires(Role.ADMIN)
    @blp.response(200, EndpointWithSecretSchema)
    def post(self, endpoint_id: str) -> Response:
        """Rotate the secret: for 24 hours deliveries carry both signatures"""
        rotated = _service().rotate_secret(principal(), endpoint_id)
        return json_response(_secret_body(rotated), 200, NO_STORE)


@blp.route("/<endpoint_id>/test")
class EndpointTest(MethodView):
    @requires(Role.ADMIN)
    @blp.response(202, TestEventSchema)
    def post(self, endpoint_id: str) -> Response:
        """Send a webhook.test event to this endpoint now"""
        event_id = _service().send_test(principal(), endpoint_id, g.request_id)
        return json_response({"event_id": event_id}, 202)


@blp.route("/<endpoint_id>/deliveries")
class Deliveries(MethodView):
    @requires(Role.ADMIN)
    @blp.arguments(PageQuery, location="query")
    @blp.response(200, DeliveryPageSchema, headers=LINK_HEADER)
    def get(self, query: dict[str, Any], endpoint_id: str) -> Response:
        """List an endpoint's deliveries, newest first"""
        page = _service().deliveries(principal(), endpoint_id, query["limit"], query["cursor"])
        body = {"data": [_delivery_body(v) for v in page.items], "next_cursor": page.next_cursor}
        return add_link(json_response(body), page)


@blp.route("/<endpoint_id>/deliveries/<delivery_id>")
class DeliveryItem(MethodView):
    @requires(Role.ADMIN)
    @blp.response(200, DeliverySchema)
    def get(self, endpoint_id: str, delivery_id: str) -> Response:
        """Get a delivery with its attempt log"""
        return json_response(
            _delivery_body(_service().delivery(principal(), endpoint_id, delivery_id))
        )


@blp.route("/<endpoint_id>/deliveries/<delivery_id>/redeliver")
class Redelivery(MethodView):
    @requires(Role.ADMIN)
    @blp.response(202, DeliverySchema)
    def post(self, endpoint_id: str, delivery_id: str) -> Response:
        """Send a delivery again now"""
        view = _service().redeliver(principal(), endpoint_id, delivery_id)
        return json_response(_delivery_body(view), 202)
