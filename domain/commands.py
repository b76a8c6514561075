"""Commands: what a client asks the domain to do."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class SubmitJob:
    type: str
    payload: Any = field(default_factory=dict)
    priority: str = "normal"
    run_at: datetime | None = None
    max_attempts: int | None = None
    timeout_seconds: int | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    concurrency_key: str | None = None
    rate_key: str | None = None
