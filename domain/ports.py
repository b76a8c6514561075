"""What the domain needs from outside, as small protocols. The entrypoints plug in the real
implementations (``workers.publisher``); tests plug in the fakes in ``tests.unit.fakes``."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from domain.context import CancellationToken


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


@dataclass(frozen=True)
class Dispatch:
    """Rung after a commit that made jobs ready in ``queue``, or freed a place in its window: the
    dispatcher fills the window again (``domain.dispatch.service``)."""

    queue: str


Command = RunJob | DeliverWebhook | Dispatch


class DispatchBell(Protocol):
    def ring(self, queues: Sequence[str]) -> None:
        """Wake the dispatchers of ``queues``; never raises (a periodic pass backs it up)."""
        ...


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


# The most of a target's answer body that is kept, counted after decompression: what the outbound
# side reads and the `http` job type stores.
MAX_ANSWER_BODY_BYTES = 64 * 1024


@dataclass(frozen=True)
class TargetRequest:
    """One request an `http` job sends to its target."""

    url: str
    method: str
    headers: dict[str, str]  # everything to send, signature and Hopper-* headers included
    body: bytes | None
    timeout_seconds: float


@dataclass(frozen=True)
class TargetAnswer:
    """What came back from a target, or why nothing did."""

    status: int | None  # None: no HTTP answer (see error)
    headers: dict[str, str]  # names lower-cased
    body: bytes  # at most the first MAX_ANSWER_BODY_BYTES, counted after decompression
    truncated: bool  # the body was longer than what is kept
    error: str | None = None  # "timeout", "connection refused", ... when status is None
    refused: str | None = None  # the outbound guard's reason when it refused the target; never sent


class HttpTargets(Protocol):
    def signing_secrets(self, tenant_id: str) -> list[str]:
        """The tenant's target secrets in use (newest first; two during a rotation's 24 h), empty
        if it has none."""
        ...

    def send(
        self, tenant_id: str, request: TargetRequest, cancellation: CancellationToken
    ) -> TargetAnswer:
        """Send through the outbound guard and the tenant's allow-list, within the request's
        timeout, waiting included; never raises for network trouble. Raises ``JobCanceled``
        when ``cancellation`` is set before the request goes."""
        ...
