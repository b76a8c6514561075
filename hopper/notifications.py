"""What each web process hears from PostgreSQL: jobs that finished, and API keys that changed.

On PostgreSQL, the transaction that finishes a job also sends ``NOTIFY hopper_job_finished``
(see ``domain.unit_of_work``), delivered on commit. Each web process keeps one listening
connection and wakes the requests that wait on that job: a waiting request holds no database
connection and nothing polls in a tight loop. SQLite (the embedded default) has no notifications,
so there a waiter looks again every half second.

The same connection hears of changed API keys (``domain.key_cache``) and empties the process's
key cache. Four times a second it asks the database a trivial question: once the answer is
back, every change committed before the question was asked has been heard, and the key cache is
told so. A connection that is cut, even silently, stops telling it, and the cache stops trusting
what it holds within a second.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import structlog
from sqlalchemy.engine import make_url

from domain.key_cache import KEYS_CHANNEL, KeyCache
from domain.unit_of_work import FINISHED_CHANNEL

log = structlog.get_logger(__name__)

RECHECK_WHEN_DEAF = 1.0
POLL_SECONDS = 0.5
HEARTBEAT_SECONDS = 0.25
# A partition that swallows packets ends the connection after about ten seconds, not hours.
_KEEPALIVE = {
    "keepalives": 1,
    "keepalives_idle": 5,
    "keepalives_interval": 2,
    "keepalives_count": 3,
    "tcp_user_timeout": 10_000,
}


class Watch:
    def __init__(self, wake: threading.Event, max_wait: float | None) -> None:
        self._wake = wake
        self._max_wait = max_wait

    def wait(self, timeout: float) -> None:
        if self._max_wait is not None:
            timeout = min(timeout, self._max_wait)
        self._wake.wait(max(0.0, timeout))
        self._wake.clear()


class _Capacity:
    """Long-polls may hold at most ``limit`` request threads of a process at once, so they never
    starve other requests; past it, a long-poll answers at once with the job as it stands."""

    def __init__(self, limit: int) -> None:
        self._slots = threading.BoundedSemaphore(max(1, limit))

    @contextmanager
    def slot(self) -> Iterator[bool]:
        taken = self._slots.acquire(blocking=False)
        try:
            yield taken
        finally:
            if taken:
                self._slots.release()


class PollingWaiter:
    """For SQLite: look again twice a second."""

    def __init__(self, capacity: int) -> None:
        self._capacity = _Capacity(capacity)

    @contextmanager
    def watch(self, job_id: str) -> Iterator[Watch | None]:
        with self._capacity.slot() as taken:
            yield Watch(threading.Event(), POLL_SECONDS) if taken else None


class PostgresListener:
    """One LISTEN connection per process, started on first use, re-made if it drops.

    While it is not listening, a waiter looks again every ``recheck_when_deaf`` seconds instead.
    """

    def __init__(
        self,
        database_url: str,
        capacity: int,
        recheck_when_deaf: float = RECHECK_WHEN_DEAF,
        keys: KeyCache | None = None,
    ) -> None:
        url = make_url(database_url).set(drivername="postgresql")
        self._conninfo = url.render_as_string(hide_password=False)
        self._capacity = _Capacity(capacity)
        self._recheck_when_deaf = recheck_when_deaf
        self._keys = keys or KeyCache()
        self._lock = threading.Lock()
        self._waiting: dict[str, set[threading.Event]] = defaultdict(set)
        self._thread: threading.Thread | None = None
        self._listening = threading.Event()
        self._stopped = threading.Event()

    @contextmanager
    def watch(self, job_id: str) -> Iterator[Watch | None]:
        with self._capacity.slot() as taken:
            if not taken:
                yield None
                return
            self._ensure_started()
            wake = threading.Event()
            with self._lock:
                self._waiting[job_id].add(wake)
            try:
                deaf = not self._listening.is_set()
                yield Watch(wake, self._recheck_when_deaf if deaf else None)
            finally:
                with self._lock:
                    self._waiting[job_id].discard(wake)
                    if not self._waiting[job_id]:
                        del self._waiting[job_id]

    def ready(self, timeout: float) -> bool:
        """Start listening if it has not started, and wait up to ``timeout`` seconds for the
        LISTEN to be in place. A watch begun after this returns true is woken by the
        notification, not by looking again (a test needs to know which; so may a warm-up)."""
        self._ensure_started()
        return self._listening.wait(timeout)

    def stop(self) -> None:
        self._stopped.set()

    def start(self) -> None:
        """Listen from now on (a web process does, for its key cache)."""
        self._ensure_started()

    def _ensure_started(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="job-listener", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        pause = 0.5
        while not self._stopped.is_set():
            try:
                self._listen()
                pause = 0.5
            except psycopg.Error as exc:
                self._listening.clear()
                self._wake_everyone()  # they fall back to looking again each second
                log.warning("job_listener_disconnected", error=str(exc))
                self._stopped.wait(pause)
                pause = min(pause * 2, 10.0)

    def _listen(self) -> None:
        with psycopg.connect(
            self._conninfo, autocommit=True, connect_timeout=5, **_KEEPALIVE
        ) as connection:
            connection.execute(f"LISTEN {FINISHED_CHANNEL}")
            connection.execute(f"LISTEN {KEYS_CHANNEL}")
            self._keys.clear()  # keys that changed while we were away went unheard
            self._listening.set()
            self._wake_everyone()  # anything that finished while we were away
            while not self._stopped.is_set():
                asked = time.monotonic()
                connection.execute("SELECT 1")  # what committed before `asked` has now arrived
                for notice in connection.notifies(timeout=HEARTBEAT_SECONDS):
                    self._heard(notice)
                self._keys.heard_through(asked)

    def _heard(self, notice: psycopg.Notify) -> None:
        if notice.channel == KEYS_CHANNEL:
            log.info("api_key_changed", key_id=notice.payload)
            self._keys.clear()
        else:
            self._wake(notice.payload)

    def _wake(self, job_id: str) -> None:
        with self._lock:
            for event in self._waiting.get(job_id, ()):
                event.set()

    def _wake_everyone(self) -> None:
        with self._lock:
            for events in self._waiting.values():
                for event in events:
                    event.set()
