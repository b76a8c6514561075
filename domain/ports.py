"""What the domain needs from outside, as small protocols. The entrypoints plug in the real
implementations (``workers.publisher``); tests plug in the fakes in ``tests.unit.fakes``."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Protocol


class PublishFailed(Exception):
    """The broker did not take the message. The job stays queued for the scheduler."""


@dataclass(frozen=True)
class RunJob:
    """The command that asks a worker to run a job: ids only, never state."""

    job_id: str
    queue: str
    priority: str
    request_id: str | None = None
    # A backstop for a handler that neither stops when asked nor lets its worker stop it: the
    # broker's pool kills the process this many seconds after the run starts.
    hard_time_limit: float | None = None


@dataclass(frozen=True)
class DeliverWebhook:
    """The command that asks a delivery worker to attempt a webhook delivery."""

    delivery_id: str
    request_id: str | None = None


Command = RunJob | DeliverWebhook


class UrlRefused(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class UrlGuard(Protocol):
    def check_url(self, url: str) -> None:
        """Raise ``UrlRefused`` when outbound requests may not go to ``url``."""
        ...


class Publisher(Protocol):
    def publish(self, commands: list[Command]) -> None:
        """Hand the commands to the broker, or raise ``PublishFailed``."""
        ...


class Watch(Protocol):
    def wait(self, timeout: float) -> None:
        """Return when the watched job may have finished, or after ``timeout`` seconds."""
        ...


class JobWaiter(Protocol):
    def watch(self, job_id: str) -> AbstractContextManager[Watch | None]:
        """Watch a job for its end; None when no more waits can be held right now."""
        ...


class QueueConsumers(Protocol):
    def consumers(self, queues: Sequence[str]) -> dict[str, int] | None:
        """How many consumers each queue has now; None when the broker cannot tell (or does not
        answer)."""
        ...
