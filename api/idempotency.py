"""``Idempotency-Key`` on POST: replay a completed request, refuse one in flight or with another
body (see ``domain.idempotency``)."""

from __future__ import annotations

from typing import Any

import structlog
from flask import Response, current_app, g, request

from api.json_body import strict_loads
from domain import audit
from domain.errors import DomainError, FieldError, ValidationFailed
from domain.idempotency import Claim, current_claim, request_hash

log = structlog.get_logger(__name__)

HEADER = "Idempotency-Key"
REPLAYED = "Idempotent-Replayed"
_KEPT_HEADERS = ("Location", "Content-Type", "Cache-Control")


def _service() -> Any:
    return current_app.extensions["hopper"].idempotency


def begin() -> Any:
    """before_request, after authentication and the body checks."""
    key = request.headers.get(HEADER)
    if key is None or request.method != "POST" or g.get("principal") is None:
        return None
    if request.url_rule is None:
        return None
    if not 1 <= len(key) <= 255 or not all(" " <= c <= "~" for c in key):
        raise ValidationFailed(
            [FieldError(f"header.{HEADER}", "1 to 255 printable ASCII characters.")]
        )
    try:
        body = strict_loads(request.get_data(cache=True)) if request.content_length else None
    except (ValueError, RecursionError):
        return None  # the view answers 400, which is not stored
    claim = Claim(g.principal.tenant_id, request.path, key, g.principal.key_id)
    replay = _service().begin(claim, request_hash(body))
    if replay is not None:
        return Response(
            replay.body, status=replay.status, headers={**replay.headers, REPLAYED: "true"}
        )
    g.idempotency_claim = claim
    current_claim.set(claim)
    return None


def finish(response: Response) -> Response:
    """after_request: keep a 2xx answer for replay, or free the key after a failure."""
    claim = g.pop("idempotency_claim", None)
    current_claim.set(None)
    if claim is None:
        return response
    headers = {name: response.headers[name] for name in _KEPT_HEADERS if name in response.headers}
    try:
        _service().finish(claim, response.status_code, response.get_data(as_text=True), headers)
    except DomainError as exc:
        log.warning("idempotency_record_not_stored", error=str(exc))
    return response


def reset(_exc: BaseException | None = None) -> None:
    """teardown: nothing of this request's context outlives it in the thread."""
    current_claim.set(None)
    audit.current_request.set(None)
