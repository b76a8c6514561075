"""What a handler is given besides its payload. Handlers know nothing of Celery."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from domain.ports import HttpTargets


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


class RetryLater(Exception):
    """Raised by a handler whose attempt failed for a reason that may pass (a busy target).

    The job is retried on its type's backoff, or after ``after_seconds`` when given (a target's
    ``Retry-After``, say), while attempts remain. Any other exception is retried the same way on
    the backoff; this one only adds the delay.
    """

    def __init__(self, message: str, after_seconds: float | None = None) -> None:
        super().__init__(message)
        self.after_seconds = after_seconds


class PermanentFailure(Exception):
    """Raised by a handler whose attempt failed for a reason that another attempt would meet
    again (a target's 404, say): the job fails now, whatever attempts remain."""


@dataclass
class JobContext:
    job_id: str
    attempt: int
    deadline: datetime
    cancellation: CancellationToken = field(default_factory=CancellationToken)
    tenant_id: str = ""
    http: HttpTargets | None = None  # the port for `http` jobs; None in a worker without it
