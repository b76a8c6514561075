"""Principals of recently authenticated API keys, kept in each process, so that a request need
not read its key's row.

A revoked or expired key must still be refused on every process within a second. PostgreSQL
announces every change of a key's row on ``KEYS_CHANNEL`` (a trigger, migration 0006), and each
web process listens (``hopper.notifications``): hearing of a change empties the cache. A few
times a second the listener also proves that it has heard every change committed up to some
moment, ``heard_through``. An entry is trusted only while it is at most ``max_staleness``
seconds older than the later of its own read and that moment. So while the channel works,
entries last until they are refreshed (for ``last_used_at``); when it is cut, however silently,
they last a second, and then each key is read again, at most once a second a process.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from domain.auth import Principal

KEYS_CHANNEL = "hopper_keys_changed"
MAX_STALENESS_SECONDS = 1.0


@dataclass(frozen=True)
class Ticket:
    """Taken before a key's row is read: what the read can vouch for."""

    generation: int
    at: float


@dataclass(frozen=True)
class _Entry:
    principal: Principal
    expires_at: datetime | None
    read_at: float


class KeyCache:
    def __init__(
        self,
        *,
        max_staleness: float = MAX_STALENESS_SECONDS,
        refresh_after: float = 30.0,
        capacity: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._max_staleness = max_staleness
        self._refresh_after = refresh_after
        self._capacity = capacity
        self._clock = clock
        self._entries: dict[str, _Entry] = {}
        self._generation = 0
        self._heard_through = -math.inf
        self._lock = threading.Lock()

    def get(self, key_hash: str, now: datetime) -> Principal | None:
        """The principal of a key whose entry is still trustworthy and which has not expired by
        ``now``; None sends the caller to the database."""
        entry = self._entries.get(key_hash)
        if entry is None:
            return None
        at = self._clock()
        known_fresh = max(entry.read_at, self._heard_through)
        if at - known_fresh > self._max_staleness or at - entry.read_at > self._refresh_after:
            return None
        if entry.expires_at is not None and entry.expires_at <= now:
            return None
        return entry.principal

    def ticket(self) -> Ticket:
        return Ticket(self._generation, self._clock())

    def put(
        self, key_hash: str, ticket: Ticket, principal: Principal, expires_at: datetime | None
    ) -> None:
        """Keep what a read begun at ``ticket`` found, unless a change was heard meanwhile: the
        read may have seen the row before it."""
        with self._lock:
            if ticket.generation != self._generation:
                return
            if len(self._entries) >= self._capacity:
                self._entries.clear()
            self._entries[key_hash] = _Entry(principal, expires_at, ticket.at)

    def clear(self) -> None:
        """A key changed, or changes may have gone unheard: trust nothing read before now."""
        with self._lock:
            self._generation += 1
            self._entries.clear()

    def heard_through(self, moment: float) -> None:
        """Every change committed before ``moment`` (this clock) has been heard."""
        with self._lock:
            self._heard_through = max(self._heard_through, moment)
