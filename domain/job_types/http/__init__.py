"""``http``: one signed HTTP request to a tenant's target, retried while the target is busy.

Each request carries Standard Webhooks headers signed with the tenant's target secrets, so the
target can tell it came from Hopper; ``webhook-id`` is ``<job id>.<attempt>``, the same for a
job's attempt whichever worker sends it. The sending itself (the outbound guard, the tenant's
allow-list, the network) is the ``HttpTargets`` port's.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from domain import queues
from domain.context import JobCanceled, JobContext, PermanentFailure
from domain.job_types.http.answer import HttpResult, outcome, result, retry_after
from domain.job_types.http.payload import DEFAULT_TIMEOUT_SECONDS, HttpPayload, body_text
from domain.job_types.registry import JobType
from domain.ports import HttpTargets, TargetRequest
from domain.webhooks.signing import signature_header

JSON_CONTENT_TYPE = "application/json"
TEXT_CONTENT_TYPE = "text/plain; charset=utf-8"
CANNOT_SIGN = "the tenant has no HTTP target secret; create one with POST /v1/http-target-secret"
# What a request gets at the least when the job's deadline is nearer than its own timeout: less
# could hardly be answered, and the deadline stops a late one anyway.
MIN_LEFT_SECONDS = 1.0


def run(payload: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    """Send the request and read the answer: the result, or ``RetryLater``/``PermanentFailure``."""
    targets = _targets(ctx)
    secrets = targets.signing_secrets(ctx.tenant_id)
    if not secrets:
        raise PermanentFailure(CANNOT_SIGN)
    request = request_for(payload, ctx, secrets, datetime.now(UTC))
    if ctx.cancellation.requested:
        raise JobCanceled(ctx.cancellation.reason or "canceled")
    answer = targets.send(ctx.tenant_id, request, ctx.cancellation)
    return outcome(answer, datetime.now(UTC), hide=payload.get("secret_headers", {}).values())


def _targets(ctx: JobContext) -> HttpTargets:
    if ctx.http is None:
        raise RuntimeError(
            "this worker was started without the HTTP targets port, so it cannot run http jobs"
        )
    return ctx.http


def request_for(
    payload: dict[str, Any], ctx: JobContext, secrets: list[str], now: datetime
) -> TargetRequest:
    """The signed request for a loaded payload, on ``ctx``'s attempt, at ``now``."""
    text = body_text(payload.get("body"))
    headers = {**payload.get("headers", {}), **payload.get("secret_headers", {})}
    content_type = _default_content_type(payload.get("body"))
    if content_type and not any(name.lower() == "content-type" for name in headers):
        headers["Content-Type"] = content_type
    headers.update(hopper_headers(ctx, secrets, int(now.timestamp()), text or ""))
    return TargetRequest(
        url=payload["url"],
        method=payload.get("method", "POST"),
        headers=headers,
        body=None if text is None else text.encode("utf-8"),
        timeout_seconds=_timeout(payload, ctx, now),
    )


def _default_content_type(body: Any) -> str | None:
    if body is None:
        return None
    return TEXT_CONTENT_TYPE if isinstance(body, str) else JSON_CONTENT_TYPE


def hopper_headers(
    ctx: JobContext, secrets: list[str], timestamp: int, body: str
) -> dict[str, str]:
    """The headers Hopper adds: the job and attempt, and the Standard Webhooks signature over
    ``body`` exactly as sent."""
    message_id = f"{ctx.job_id}.{ctx.attempt}"
    return {
        "Hopper-Job-Id": ctx.job_id,
        "Hopper-Attempt": str(ctx.attempt),
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature_header(secrets, message_id, timestamp, body),
    }


def _timeout(payload: dict[str, Any], ctx: JobContext, now: datetime) -> float:
    # A request that outlives the job's deadline would be cut off without an answer to record.
    asked = float(payload.get("timeout_seconds", DEFAULT_TIMEOUT_SECONDS))
    left = (ctx.deadline - now).total_seconds()
    return min(asked, max(MIN_LEFT_SECONDS, left))


JOB_TYPE = JobType(
    name="http",
    description="Sends one signed HTTP request to a URL and returns the target's answer.",
    queue=queues.HTTP,
    payload_schema=HttpPayload,
    result_schema=HttpResult,
    handler=run,
    default_timeout_seconds=90,
    default_max_attempts=5,
    secret_fields=("secret_headers",),
)

__all__ = [
    "JOB_TYPE",
    "HttpPayload",
    "HttpResult",
    "hopper_headers",
    "outcome",
    "request_for",
    "result",
    "retry_after",
    "run",
]
