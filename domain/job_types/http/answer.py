"""The ``http`` type's reading of a target's answer: a result, a retry, or a failure."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import marshmallow as ma

from domain.context import PermanentFailure, RetryLater
from domain.ports import MAX_ANSWER_BODY_BYTES, TargetAnswer
from domain.retry_after import retry_after_seconds
from domain.secrets import REDACTED

KEPT_HEADERS = ("content-type", "location", "etag", "retry-after")
MAX_RETRY_AFTER_SECONDS = 3600.0
EXCERPT_CHARS = 500
RETRIED_STATUSES = frozenset({408, 429})


class HttpResult(ma.Schema):
    status = ma.fields.Integer(required=True, strict=True)
    headers = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.String(), required=True)
    body = ma.fields.String(required=True)
    truncated = ma.fields.Boolean(required=True)


def retry_after(value: str | None, now: datetime) -> float | None:
    """A ``Retry-After`` value in seconds from ``now``, at most an hour; None when absent or
    unreadable."""
    seconds = retry_after_seconds(value, now)
    return None if seconds is None else min(seconds, MAX_RETRY_AFTER_SECONDS)


def outcome(answer: TargetAnswer, now: datetime, *, hide: Iterable[str] = ()) -> dict[str, Any]:
    """The job's result for a 2xx answer; otherwise raises ``RetryLater`` or
    ``PermanentFailure``. Each string in ``hide`` (the secret header values) is blanked out of
    any message, since a target may echo what it was sent."""
    if answer.refused is not None:
        raise PermanentFailure(_redact(f"the target was refused: {answer.refused}", hide))
    if answer.status is None:
        raise RetryLater(_redact(f"no answer: {answer.error or 'unknown error'}", hide))
    if 200 <= answer.status < 300:
        return result(answer, hide)
    if answer.status in RETRIED_STATUSES or 500 <= answer.status < 600:
        delay = retry_after(answer.headers.get("retry-after"), now)
        raise RetryLater(f"HTTP {answer.status}", after_seconds=delay)
    raise PermanentFailure(_failure_message(answer, hide))


def result(answer: TargetAnswer, hide: Iterable[str] = ()) -> dict[str, Any]:
    """The answer as the job's result: the kept headers and the body as text, with the secret
    header values blanked out of both."""
    truncated = answer.truncated or len(answer.body) > MAX_ANSWER_BODY_BYTES
    body = answer.body[:MAX_ANSWER_BODY_BYTES].decode("utf-8", "replace")
    kept = {k: _redact(v, hide) for k, v in answer.headers.items() if k in KEPT_HEADERS}
    return {
        "status": answer.status,
        "headers": kept,
        "body": _redact(body, hide, cut=truncated),
        "truncated": truncated,
    }


def _failure_message(answer: TargetAnswer, hide: Iterable[str]) -> str:
    message = f"HTTP {answer.status}"
    # 304 answers a conditional request: it points nowhere, so there is no redirect to refuse.
    if answer.status is not None and 300 <= answer.status < 400 and answer.status != 304:
        location = answer.headers.get("location")
        message += " (redirects are not followed"
        message += f"; location: {location})" if location else ")"
    # Blanked whole before the cut, so that the cut cannot leave part of a secret.
    body = _redact(answer.body.decode("utf-8", "replace"), hide)
    excerpt = _redact(body[:EXCERPT_CHARS], hide, cut=len(body) > EXCERPT_CHARS or answer.truncated)
    return _redact(f"{message}: {excerpt}" if excerpt else message, hide)


def _redact(text: str, hide: Iterable[str], *, cut: bool = False) -> str:
    """``text`` with every secret in ``hide`` blanked, as sent or as a JSON string would carry
    it; where ``text`` was cut short, a secret's beginning at its very end is blanked too."""
    secrets = {v for s in hide if s for v in (s, json.dumps(s)[1:-1])}
    # Longest first, so a secret that contains another is blanked whole.
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    if cut:
        for secret in secrets:
            kept = next((k for k in range(len(secret) - 1, 0, -1) if text.endswith(secret[:k])), 0)
            if kept:
                text = text[:-kept] + REDACTED
    return text
