"""Payload fields a job type marks secret (``JobType.secret_fields``, the ``http`` type's
``secret_headers``): encrypted at rest apart from the payload, and shown nowhere.

The payload a job (or a schedule) stores and every representation shows has each secret value
replaced by ``[redacted]``; the values themselves are sealed (``domain.secrets``) in a column of
their own, and only a worker opens them, just before the handler runs.
"""

from __future__ import annotations

import json
from typing import Any

from domain.job_types import JobType
from domain.secrets import REDACTED, SecretBox


def split(job_type: JobType, payload: Any) -> tuple[Any, dict[str, Any] | None]:
    """The payload to store and show, and its secret fields (None when it has none)."""
    if not job_type.secret_fields or not isinstance(payload, dict):
        return payload, None
    secrets = {name: payload[name] for name in job_type.secret_fields if payload.get(name)}
    if not secrets:
        return payload, None
    return {**payload, **{name: redacted(value) for name, value in secrets.items()}}, secrets


def redacted(value: Any) -> Any:
    """The value's shape, for a reader to see what was given, with nothing of what it holds."""
    if isinstance(value, dict):
        return {key: REDACTED for key in value}
    return REDACTED


def seal(box: SecretBox, secrets: dict[str, Any] | None) -> str | None:
    return None if secrets is None else box.seal(json.dumps(secrets, separators=(",", ":")))


def opened(box: SecretBox, payload: Any, sealed: str | None) -> Any:
    """The payload as it was submitted, secret fields and all."""
    if sealed is None:
        return payload
    secrets: dict[str, Any] = json.loads(box.open(sealed))
    return {**payload, **secrets}
