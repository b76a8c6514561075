"""Reads from a streaming replica, without ever showing a key something older than what it has
already seen (read-your-writes).

After a request that touched the primary (a write, or a read that had to go there) the primary's
WAL position is kept for the request's key, in Redis where there is one (so every web process
knows it), in this process otherwise. A read of that key goes to the replica only once the
replica has replayed up to that position, and only while the replica is not more than
``HOPPER_REPLICA_MAX_LAG_SECONDS`` behind; otherwise it goes to the primary. Long-polls and
``If-None-Match`` checks, which are about the newest state, always go to the primary.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import structlog
from sqlalchemy import Engine, text

log = structlog.get_logger(__name__)

STATE_SECONDS = 0.1  # how long the replica's replay position is trusted without asking again
FAILED_SECONDS = 2.0  # how long a replica that did not answer is left alone
INFINITE = float("inf")
UNKNOWN_POSITION = 1 << 62  # a key whose position could not be read: the primary, for a while
UNKNOWN_TTL_SECONDS = 60
POSITION_TTL_SECONDS = 3600
_LATER_ONLY = """
local now = redis.call('GET', KEYS[1])
if not now or tonumber(ARGV[1]) > tonumber(now) then
  redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
end
return 1
"""


@dataclass
class _Request:
    key_id: str | None
    primary_only: bool
    touched_primary: bool = False


_current: ContextVar[_Request | None] = ContextVar("hopper_read_request", default=None)


def lsn_number(lsn: str) -> int:
    """``16/B374D848`` as one number, so that positions compare."""
    high, low = lsn.split("/")
    return (int(high, 16) << 32) + int(low, 16)


class Positions:
    """The last primary position each key has seen: in Redis, or in this process."""

    def __init__(self, redis_url: str | None) -> None:
        self._local: dict[str, int] = {}
        self._lock = threading.Lock()
        self._script: Any = None
        if redis_url:
            import redis

            client = redis.Redis.from_url(
                redis_url, socket_timeout=0.25, socket_connect_timeout=0.25
            )
            self._script = client.register_script(_LATER_ONLY)
            self._client = client

    def seen(self, key_id: str, position: int, ttl: int = POSITION_TTL_SECONDS) -> None:
        with self._lock:
            self._local[key_id] = max(position, self._local.get(key_id, 0))
        if self._script is not None:
            try:
                self._script(keys=[_redis_key(key_id)], args=[position, ttl])
            except Exception as exc:  # Redis away: this process still knows
                log.warning("read_position_unsaved", error=type(exc).__name__)

    def last(self, key_id: str) -> int:
        known = self._local.get(key_id, 0)
        if self._script is None:
            return known
        try:
            stored = self._client.get(_redis_key(key_id))
        except Exception:  # Redis away: none may read the replica without knowing
            return 1 << 62
        return max(known, int(stored or 0))


def _redis_key(key_id: str) -> str:
    return f"hopper:read-position:{key_id}"


class ReplicaReads:
    """Decides, read by read, whether the replica may answer."""

    def __init__(
        self,
        replica: Engine,
        primary: Engine,
        positions: Positions,
        max_lag_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.replica = replica
        self._primary = primary
        self._positions = positions
        self._max_lag = max_lag_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._state: tuple[float, int, float] | None = None  # (ask again at, replayed, lag)

    def begin(self, key_id: str | None, primary_only: bool) -> None:
        _current.set(_Request(key_id, primary_only))

    def end(self) -> None:
        """After the request: if it touched the primary, keep the position it saw."""
        request = _current.get()
        _current.set(None)
        if request is None or request.key_id is None or not request.touched_primary:
            return
        try:
            with self._primary.connect() as connection:
                lsn = connection.execute(text("SELECT pg_current_wal_insert_lsn()")).scalar_one()
        except Exception as exc:  # the answer is sent; the key's next reads go to the primary
            log.warning("read_position_unknown", error=type(exc).__name__)
            self._positions.seen(request.key_id, UNKNOWN_POSITION, ttl=UNKNOWN_TTL_SECONDS)
            return
        self._positions.seen(request.key_id, lsn_number(str(lsn)))

    def touched_primary(self) -> None:
        request = _current.get()
        if request is not None:
            request.touched_primary = True

    def may_read(self) -> bool:
        """Whether this read may go to the replica."""
        request = _current.get()
        if request is None or request.primary_only:
            return False
        replayed, lag = self.state()
        if lag > self._max_lag:
            return False
        if request.key_id is None:
            return True
        needed = self._positions.last(request.key_id)
        if replayed >= needed:
            return True
        replayed, _ = self.state(fresh=True)
        return replayed >= needed

    def state(self, fresh: bool = False) -> tuple[int, float]:
        """(the replica's replay position, its lag in seconds), asked at most every
        ``STATE_SECONDS``. A replica that does not answer is infinitely behind, and is not asked
        again for ``FAILED_SECONDS``: readers do not queue up behind its timeouts."""
        with self._lock:
            if (
                self._state is None
                or self._clock() >= self._state[0]
                or (fresh and self._state[2] != INFINITE)
            ):
                replayed, lag = self._ask()
                hold = FAILED_SECONDS if lag == INFINITE else STATE_SECONDS
                self._state = (self._clock() + hold, replayed, lag)
            return self._state[1], self._state[2]

    def lag_seconds(self) -> float:
        return self.state()[1]

    def _ask(self) -> tuple[int, float]:
        """Caught up when it has replayed what the primary has written; else as far behind as
        its last replayed transaction is old. (A replica whose stream stopped replays all it
        received and would look caught up by its own figures alone.)"""
        try:
            with self._primary.connect() as connection:
                written = connection.execute(text("SELECT pg_current_wal_lsn()")).scalar_one()
            with self.replica.connect() as connection:
                row = connection.execute(text(_REPLICA_STATE)).one()
        except Exception as exc:
            log.warning("replica_unavailable", error=type(exc).__name__)
            return 0, INFINITE
        if row.replayed is None:
            return 0, INFINITE  # not a replica, or not replaying
        replayed = lsn_number(str(row.replayed))
        if replayed >= lsn_number(str(written)):
            return replayed, 0.0
        return replayed, INFINITE if row.behind is None else max(0.0, float(row.behind))


_REPLICA_STATE = """
SELECT pg_last_wal_replay_lsn() AS replayed,
       extract(epoch FROM now() - pg_last_xact_replay_timestamp()) AS behind
"""
