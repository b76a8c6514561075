"""Body checks before a view: size and content type, in the contract's order (after
authentication and routing). The web server's front door holds a request until its body is
whole, except one announced over the route's limit: that one reaches here unread, and its
connection is closed after the ``413``."""

from __future__ import annotations

from typing import Any

import structlog
from flask import current_app, request

from api.hygiene import bind_principal
from api.problems import problem
from domain.settings import Settings

BATCH_PATHS = frozenset({"/v1/jobs/batch"})


def body_limit(settings: Settings, path: str) -> int:
    """The largest body the route at ``path`` takes, in bytes."""
    return settings.max_batch_body_bytes if path in BATCH_PATHS else settings.max_body_bytes


def check_body() -> Any:
    """413 for a body over the limit, 415 for a body that is not JSON. The principal is known by
    now: its tenant joins the log context."""
    bind_principal()
    if request.url_rule is None:
        return None
    job_id = (request.view_args or {}).get("job_id")
    if isinstance(job_id, str):
        structlog.contextvars.bind_contextvars(job_id=job_id)
    limit = body_limit(current_app.extensions["hopper"].settings, request.path)
    request.max_content_length = limit
    length = request.content_length
    if length is not None and length > limit:
        return problem(
            413,
            f"The body is over the {limit} byte limit for this route.",
            headers={"Connection": "close"},
        )
    has_body = bool(length) or request.headers.get("Transfer-Encoding", "").lower() == "chunked"
    if has_body and request.method in ("POST", "PUT", "PATCH") and not request.is_json:
        return problem(415, "Send the body as application/json.")
    return None
