"""API keys: create (the secret shown once), list, revoke. Admin only, tenant-scoped."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import Response, current_app
from flask.views import MethodView

from api.auth import principal, requires
from api.json_body import HopperBlueprint
from api.keys.schemas import KeyCreateSchema, KeyPageSchema, KeySchema, NewKeySchema
from api.pagination import LINK_HEADER, PageQuery, add_link, page_body
from api.responses import json_response
from domain.errors import FieldError, ValidationFailed
from domain.model import Role

blp = HopperBlueprint("keys", __name__, url_prefix="/v1/api-keys", description="API keys.")
_key = KeySchema()


def _access() -> Any:
    return current_app.extensions["hopper"].access


@blp.route("")
class Keys(MethodView):
    @requires(Role.ADMIN)
    @blp.arguments(KeyCreateSchema)
    @blp.response(201, NewKeySchema)
    def post(self, body: dict[str, Any]) -> Response:
        """Create an API key (the key itself is shown only in this answer)"""
        expires_at = body["expires_at"]
        if expires_at is not None and expires_at <= datetime.now(UTC):
            raise ValidationFailed([FieldError("expires_at", "Must be in the future.")])
        who = principal()
        created = _access().create_key(who.tenant_id, body["name"], Role(body["role"]), expires_at)
        answer = {**_key.dump(created.record), "key": created.secret}
        return json_response(answer, 201, {"Cache-Control": "no-store"})

    @requires(Role.ADMIN)
    @blp.arguments(PageQuery, location="query")
    @blp.response(200, KeyPageSchema, headers=LINK_HEADER)
    def get(self, query: dict[str, Any]) -> Response:
        """List API keys, newest first (never their secrets)"""
        page = _access().list_keys(principal(), query["limit"], query["cursor"])
        return add_link(json_response(page_body(page, _key)), page)


@blp.route("/<key_id>")
class KeyItem(MethodView):
    @requires(Role.ADMIN)
    @blp.response(204)
    def delete(self, key_id: str) -> Response:
        """Revoke an API key: it fails with 401 at once, on every process"""
        _access().revoke_key(principal(), key_id)
        return Response(status=204)
