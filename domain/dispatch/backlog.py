"""The backlog of committed commands waiting for the broker: the one place that decides what is
published next. Today it is first in, first out, bounded; a per-queue window and a round-robin
between tenants belong here too, so that every path to the broker obeys the same choice."""

from __future__ import annotations

import threading
from collections import deque

from domain.ports import Command

# Beyond this many waiting commands a process stops holding more: the rest go back to the
# scheduler at once (their rows are committed; it publishes them).
BACKLOG_LIMIT = 50_000


class Backlog:
    """Thread-safe: requests add, one relay thread takes."""

    def __init__(self, limit: int = BACKLOG_LIMIT) -> None:
        self._limit = limit
        self._waiting: deque[Command] = deque()
        self._lock = threading.Lock()

    def add(self, commands: list[Command]) -> list[Command]:
        """Hold the commands; returns those that did not fit."""
        with self._lock:
            room = max(0, self._limit - len(self._waiting))
            self._waiting.extend(commands[:room])
        return commands[room:]

    def take(self, limit: int) -> list[Command]:
        """The next commands to publish, at most ``limit``, in the order they were added."""
        with self._lock:
            count = min(limit, len(self._waiting))
            return [self._waiting.popleft() for _ in range(count)]

    def __len__(self) -> int:
        return len(self._waiting)
