"""The dispatcher: a thread of the scheduler process that fills the queues' windows
(``domain.dispatch.service``) as soon as the bell rings (``workers.bell``), a backlogged queue
at most every ``REFILL_EVERY`` seconds, and every ``IDLE_PASS`` seconds every queue with ready
jobs: a job whose ``run_at`` or backoff has come, or a ring that went unheard while the
connection was away.

Several schedulers may run one each: a queue's lock lets one of them fill its window at a time.
On SQLite there is nothing to listen to, and the periodic pass is all there is.
"""

from __future__ import annotations

import threading
import time

import psycopg
import structlog
from sqlalchemy.engine import make_url

from domain.dispatch.service import DispatchService
from domain.errors import DomainError
from workers import instruments
from workers.bell import CHANNEL

log = structlog.get_logger(__name__)

IDLE_PASS = 0.25
REFILL_EVERY = 0.05
RECONNECT_PAUSE = 1.0


class Dispatcher:
    def __init__(
        self, service: DispatchService, database_url: str | None, idle_pass: float = IDLE_PASS
    ) -> None:
        self._service = service
        self._conninfo = None
        if database_url is not None:
            url = make_url(database_url).set(drivername="postgresql")
            self._conninfo = url.render_as_string(hide_password=False)
        self._idle_pass = idle_pass
        self._stopping = threading.Event()
        self.listening = threading.Event()  # set while a LISTEN is in place
        self._next_periodic = 0.0
        self._last: dict[str, float] = {}  # when each queue was last filled
        self._deferred: dict[str, float] = {}  # refills put off, and until when
        self._thread = threading.Thread(target=self._run, name="hopper-dispatcher", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stopping.set()
        self._thread.join(timeout)

    def _run(self) -> None:
        log.info("dispatcher_started", listening=self._conninfo is not None)
        while not self._stopping.is_set():
            try:
                if self._conninfo is None:
                    self._pass(None)
                    self._stopping.wait(self._idle_pass)
                else:
                    self._listen(self._conninfo)
            except psycopg.Error as exc:
                self.listening.clear()
                log.warning("dispatcher_disconnected", error=str(exc))
                self._stopping.wait(RECONNECT_PAUSE)

    def _listen(self, conninfo: str) -> None:
        with psycopg.connect(conninfo, autocommit=True, connect_timeout=5) as connection:
            connection.execute(f"LISTEN {CHANNEL}")
            self.listening.set()
            self._pass(None)  # whatever rang while nobody listened
            while not self._stopping.is_set():
                first = connection.notifies(timeout=self._next_look(), stop_after=1)
                heard = {notice.payload for notice in first}
                if heard:  # and whatever rang meanwhile, in the same pass
                    heard |= {notice.payload for notice in connection.notifies(timeout=0.001)}
                self._answer(heard)

    def _answer(self, heard: set[str]) -> None:
        """Fill the windows that rang, and those whose refill was put off until now; every
        queue once the periodic pass is due. A backlogged queue (its last pass filled its
        window to the brim) is refilled at most every ``REFILL_EVERY`` seconds: a pass per
        claim would spend on the database what its workers need, and the window holds far
        more than that pause drains."""
        now = time.monotonic()
        if now >= self._next_periodic:
            self._deferred.clear()
            self._pass(None)
            return
        wanted = heard | {queue for queue, at in self._deferred.items() if at <= now}
        go = []
        for queue in sorted(wanted):
            last = self._last.get(queue, 0.0)
            if queue in self._service.backlogged and now - last < REFILL_EVERY:
                self._deferred[queue] = last + REFILL_EVERY
            else:
                self._deferred.pop(queue, None)
                self._last[queue] = now
                go.append(queue)
        if go:
            self._pass(go)

    def _next_look(self) -> float:
        """Until the periodic pass, a put-off refill, or a resting rate key's next start."""
        now = time.monotonic()
        waits = [self._next_periodic - now, *(at - now for at in self._deferred.values())]
        if self._service.rests_for is not None:
            waits.append(self._service.rests_for)
        return max(0.0, min(waits))

    def _pass(self, queues: list[str] | None) -> None:
        if queues is None:
            self._next_periodic = time.monotonic() + self._idle_pass
        try:
            instruments.SCHEDULER_ACTIONS.labels("dispatched").inc(self._service.dispatch(queues))
        except DomainError as exc:  # the database is away: the next pass tries again
            log.warning("dispatch_failed", error=str(exc), error_type=type(exc).__name__)
            self._stopping.wait(RECONNECT_PAUSE)
        except Exception as exc:  # the thread must outlive any one pass
            log.exception("dispatch_pass_failed", error=str(exc))
            self._stopping.wait(RECONNECT_PAUSE)
