"""What the domain needs from outside, as small protocols. The entrypoints plug in the real
implementations (``workers.publisher``); tests plug in the fakes in ``domain.fakes``."""

from __future__ import annotations

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


class Publisher(Protocol):
    def publish(self, commands: list[RunJob]) -> None:
        """Hand the commands to the broker, or raise ``PublishFailed``."""
        ...


class JobWaiter(Protocol):
    def wait_finished(self, job_id: str, timeout: float) -> None:
        """Return when the job may have finished, or after ``timeout`` seconds."""
        ...
