"""A tenant's settings for its ``http`` jobs: the secret that signs their requests, and the
private hosts they may reach."""

from __future__ import annotations

from typing import Any

from flask import Response, current_app
from flask.views import MethodView

from api.auth import principal, requires
from api.http_targets.schemas import AllowListSchema, TargetSecretSchema
from api.json_body import HopperBlueprint
from api.responses import json_response
from domain.model import Role

blp = HopperBlueprint(
    "http_targets",
    __name__,
    url_prefix="/v1",
    description="How the tenant's http jobs are signed, and which private hosts they may reach.",
)
NO_STORE = {"Cache-Control": "no-store"}


def _service() -> Any:
    return current_app.extensions["hopper"].http_targets


@blp.route("/http-target-secret")
class TargetSecret(MethodView):
    @requires(Role.ADMIN)
    @blp.response(200, TargetSecretSchema)
    def post(self) -> Response:
        """Create or rotate the target secret: for 24 hours requests carry both signatures"""
        return json_response({"secret": _service().rotate_secret(principal())}, 200, NO_STORE)


@blp.route("/http-target-allowlist")
class AllowList(MethodView):
    @requires(Role.ADMIN)
    @blp.response(200, AllowListSchema)
    def get(self) -> Response:
        """The private hosts the tenant's http jobs may reach"""
        return json_response({"hosts": _service().allowed_hosts(principal())})

    @requires(Role.ADMIN)
    @blp.arguments(AllowListSchema)
    @blp.response(200, AllowListSchema)
    def put(self, body: dict[str, Any]) -> Response:
        """Replace the private hosts the tenant's http jobs may reach"""
        hosts = _service().replace_allowed_hosts(principal(), body["hosts"])
        return json_response({"hosts": hosts})
