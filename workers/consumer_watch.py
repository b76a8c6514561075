"""The scheduler's watch for queues that have due work and no consumer: a worker pool that was
never started, or started on the wrong queues, is otherwise silent (the work just waits).

A queue is reported once it has been seen so on two checks in a row (a pool that is still
starting is not a problem), then once a minute while it lasts.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import structlog

from domain.services.metrics import StarvedQueue

log = structlog.get_logger(__name__)

CHECK_EVERY = 10.0
REPEAT_EVERY = 60.0


class ConsumerWatch:
    def __init__(
        self,
        starved_queues: Callable[[], list[StarvedQueue]],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._starved_queues = starved_queues
        self._clock = clock
        self._next_check = 0.0
        self._seen: set[str] = set()
        self._said_at: dict[str, float] = {}

    def check(self) -> None:
        """Look if a check is due; log what has lasted."""
        now = self._clock()
        if now < self._next_check:
            return
        self._next_check = now + CHECK_EVERY
        starved = self._starved_queues()
        for queue in starved:
            if queue.queue in self._seen and self._repeat_due(queue.queue, now):
                log.warning("queue_without_consumer", queue=queue.queue, due=queue.due)
                self._said_at[queue.queue] = now
        self._seen = {queue.queue for queue in starved}
        self._said_at = {q: at for q, at in self._said_at.items() if q in self._seen}

    def _repeat_due(self, queue: str, now: float) -> bool:
        said = self._said_at.get(queue)
        return said is None or now - said >= REPEAT_EVERY
