"""The outbox relay: what a transaction committed reaches the broker from a background thread,
so that the request which committed it never waits on the broker.

The job row is the outbox. A submission commits its job as published (``published_at``), hands
the command to the relay and answers; the relay publishes what is waiting in batches, each with
one wait for the broker's confirms. A batch the broker does not take is handed back (its rows
marked unpublished, so the scheduler publishes them at once). A process that dies with commands
still waiting loses nothing either: the scheduler republishes any queued job whose publish is
older than ``HOPPER_REPUBLISH_AFTER_SECONDS``. On a graceful stop the relay publishes what is
waiting before the process exits.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import structlog

from domain.dispatch.backlog import Backlog
from domain.ports import Command, Publisher, PublishFailed

log = structlog.get_logger(__name__)

# One batch's size: a submitted batch of jobs goes out as one (the API takes at most 500).
BATCH_SIZE = 500


class Relay:
    """A ``Publisher`` that never blocks: ``publish`` holds the commands in the backlog and one
    thread hands them to the real publisher."""

    def __init__(
        self,
        publisher: Publisher,
        hand_back: Callable[[list[Command]], None],
        backlog: Backlog | None = None,
        batch_size: int = BATCH_SIZE,
    ) -> None:
        self._publisher = publisher
        self._hand_back = hand_back
        self._backlog = Backlog() if backlog is None else backlog
        self._batch_size = batch_size
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._idle = threading.Condition()
        self._busy = False
        self._thread = threading.Thread(target=self._run, name="hopper-relay", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def publish(self, commands: list[Command]) -> None:
        overflow = self._backlog.add(commands)
        self._wake.set()
        if overflow:
            log.warning("relay_backlog_full", handed_back=len(overflow))
            self._give_back(overflow)

    def flush(self, timeout: float) -> bool:
        """Wait until everything handed in so far has been published or handed back."""
        deadline = time.monotonic() + timeout
        with self._idle:
            while self._busy or len(self._backlog):
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not self._thread.is_alive():
                    return False
                self._wake.set()
                self._idle.wait(remaining)
        return True

    def close(self, timeout: float) -> None:
        """Publish what is waiting (within ``timeout``), then stop; hand back what is left."""
        self.flush(timeout)
        self._stopping.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
        if left := self._backlog.take(len(self._backlog)):
            log.warning("relay_stopped_with_backlog", handed_back=len(left))
            self._give_back(left)

    def _run(self) -> None:
        while not self._stopping.is_set():
            self._wake.wait()
            self._wake.clear()
            self._drain()

    def _drain(self) -> None:
        while True:
            with self._idle:
                batch = self._backlog.take(self._batch_size)
                self._busy = bool(batch)
                if not batch:
                    self._idle.notify_all()
                    return
            self._send(batch)

    def _send(self, batch: list[Command]) -> None:
        try:
            self._publisher.publish(batch)
        except PublishFailed as exc:
            log.warning("publish_failed", jobs=len(batch), error=str(exc))
            self._give_back(batch)
        except Exception as exc:  # the thread must outlive any one batch
            log.exception("relay_batch_failed", commands=len(batch), error=str(exc))
            self._give_back(batch)

    def _give_back(self, commands: list[Command]) -> None:
        try:
            self._hand_back(commands)
        except Exception as exc:  # the database is away too: the republish threshold holds
            log.warning("hand_back_failed", commands=len(commands), error=str(exc))
