"""What a handler is given besides its payload. Handlers know nothing of Celery."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime


class CancellationToken:
    """Set when the job's cancellation was requested or its deadline passed.

    A handler that runs for a while checks ``requested`` or sleeps with ``wait`` (which returns
    early, True, when cancellation arrives).
    """

    def __init__(self) -> None:
        self._event = threading.Event()
        self.reason: str | None = None

    @property
    def requested(self) -> bool:
        return self._event.is_set()

    def cancel(self, reason: str = "canceled") -> None:
        self.reason = self.reason or reason
        self._event.set()

    def wait(self, seconds: float) -> bool:
        return self._event.wait(seconds)


class JobCanceled(Exception):
    """Raised by a handler that stops because its cancellation token was set."""


@dataclass
class JobContext:
    job_id: str
    attempt: int
    deadline: datetime
    cancellation: CancellationToken = field(default_factory=CancellationToken)
