"""The tenant's own bounds on its work: the limit of each concurrency key and the rate of each
rate key. A job names its keys when it is submitted (``concurrency_key``, ``rate_key``)."""

from __future__ import annotations

from typing import Any

from flask import Response, current_app
from flask.views import MethodView

from api.auth import principal, requires
from api.json_body import HopperBlueprint
from api.limits.schemas import (
    ConcurrencyLimitInSchema,
    ConcurrencyLimitSchema,
    RateLimitInSchema,
    RateLimitSchema,
    limit_body,
    rate_body,
)
from api.responses import json_response
from domain.model import Role

blp = HopperBlueprint(
    "limits",
    __name__,
    url_prefix="/v1",
    description="Limits of the tenant's concurrency keys and rates of its rate keys.",
)


def _service() -> Any:
    return current_app.extensions["hopper"].key_limits


@blp.route("/concurrency-limits/<path:key>")
class ConcurrencyLimit(MethodView):
    @requires(Role.READER)
    @blp.response(200, ConcurrencyLimitSchema)
    def get(self, key: str) -> Response:
        """The limit the tenant set for a concurrency key"""
        return json_response(limit_body(_service().concurrency(principal(), key)))

    @requires(Role.ADMIN)
    @blp.arguments(ConcurrencyLimitInSchema)
    @blp.response(200, ConcurrencyLimitSchema)
    def put(self, body: dict[str, Any], key: str) -> Response:
        """Set a concurrency key's limit: at most that many of its jobs run at once"""
        return json_response(
            limit_body(_service().set_concurrency(principal(), key, body["limit"]))
        )

    @requires(Role.ADMIN)
    @blp.response(204)
    def delete(self, key: str) -> Response:
        """Remove a concurrency key's limit: the job type's default holds again"""
        _service().remove_concurrency(principal(), key)
        return Response(status=204)


@blp.route("/rate-limits/<path:key>")
class RateLimit(MethodView):
    @requires(Role.READER)
    @blp.response(200, RateLimitSchema)
    def get(self, key: str) -> Response:
        """The rate the tenant set for a rate key"""
        return json_response(rate_body(_service().rate(principal(), key)))

    @requires(Role.ADMIN)
    @blp.arguments(RateLimitInSchema)
    @blp.response(200, RateLimitSchema)
    def put(self, body: dict[str, Any], key: str) -> Response:
        """Set a rate key's rate: its jobs wait their turn, in submit order, and never fail"""
        return json_response(rate_body(_service().set_rate(principal(), key, body["rate"])))

    @requires(Role.ADMIN)
    @blp.response(204)
    def delete(self, key: str) -> Response:
        """Remove a rate key's rate: the job type's default holds again"""
        _service().remove_rate(principal(), key)
        return Response(status=204)
