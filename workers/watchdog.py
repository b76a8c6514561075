"""The watchdog beside a running handler: it keeps the lease, passes on cancellation and the
deadline, and stops a handler that will not stop."""

from __future__ import annotations

import contextvars
import threading
import time
from collections.abc import Callable

import structlog

from domain.context import CancellationToken
from domain.errors import DomainError
from domain.services.execution import Claim, ExecutionService

log = structlog.get_logger(__name__)

CHECK_SECONDS = 0.5  # a cancellation request reaches the handler within this


class Watchdog(threading.Thread):
    """Renews the lease every third of its length and looks for a cancellation request twice a
    second. When the deadline passes or cancellation arrives, it sets the handler's token; a
    handler still running ``grace`` seconds later is given up on: ``give_up`` records the attempt
    and, in a pool process, ends the process (the pool starts a fresh one)."""

    def __init__(
        self,
        execution: ExecutionService,
        claim: Claim,
        token: CancellationToken,
        grace: float,
        give_up: Callable[[], None],
    ) -> None:
        super().__init__(name=f"watchdog-{claim.job_id}", daemon=True)
        self._execution = execution
        self._claim = claim
        self._token = token
        self._grace = grace
        self._give_up = give_up
        self._done = threading.Event()
        self._renew_every = execution.lease.total_seconds() / 3
        self._deadline = time.monotonic() + claim.timeout_seconds
        self._told_at: float | None = None
        self._context = contextvars.copy_context()

    def run(self) -> None:
        # A new thread starts with an empty context: run in the task's, so lines keep its ids.
        self._context.run(self._watch)

    def _watch(self) -> None:
        next_renewal = time.monotonic() + self._renew_every
        while not self._done.wait(min(CHECK_SECONDS, self._renew_every)):
            now = time.monotonic()
            if self._told_at is not None and now - self._told_at >= self._grace:
                log.warning(
                    "handler_ignored_stop", job_id=self._claim.job_id, reason=self._token.reason
                )
                self._give_up()
                return
            if now >= self._deadline:
                self._tell("timeout", now)
            renewing = now >= next_renewal
            if renewing:
                next_renewal = now + self._renew_every
            self._check(renewing, now)

    def _check(self, renewing: bool, now: float) -> None:
        try:
            check = self._execution.renew if renewing else self._execution.look
            owned, cancel = check(self._claim)
        except DomainError as exc:  # the database is away: the lease may lapse, and that is fine
            log.warning("watchdog_check_failed", job_id=self._claim.job_id, error=str(exc))
            return
        if not owned:
            self._tell("lease_lost", now)
        elif cancel:
            self._tell("canceled", now)

    def _tell(self, reason: str, now: float) -> None:
        if self._told_at is None:
            self._token.cancel(reason)
            self._told_at = now

    def stop(self) -> None:
        self._done.set()
