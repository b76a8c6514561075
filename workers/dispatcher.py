"""The dispatcher: a thread of the scheduler process that fills the queues' windows
(``domain.dispatch.service``) as soon as the bell rings (``workers.bell``), and every
``IDLE_PASS`` seconds for every queue with ready jobs: a job whose ``run_at`` or backoff has come,
or a ring that went unheard while the connection was away.

Several schedulers may run one each: a queue's lock lets one of them fill its window at a time.
On SQLite there is nothing to listen to, and the periodic pass is all there is.
"""

from __future__ import annotations

import threading

import psycopg
import structlog
from sqlalchemy.engine import make_url

from domain.dispatch.service import DispatchService
from domain.errors import DomainError
from workers import instruments
from workers.bell import CHANNEL

log = structlog.get_logger(__name__)

IDLE_PASS = 0.25
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
                    self._stopping.wait(self._next_look())
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
                self._pass(sorted(heard) if heard else None)

    def _next_look(self) -> float:
        """The periodic pass's wait, or less when a rate key may start a job sooner."""
        rests = self._service.rests_for
        return self._idle_pass if rests is None else min(self._idle_pass, rests)

    def _pass(self, queues: list[str] | None) -> None:
        try:
            instruments.SCHEDULER_ACTIONS.labels("dispatched").inc(self._service.dispatch(queues))
        except DomainError as exc:  # the database is away: the next pass tries again
            log.warning("dispatch_failed", error=str(exc), error_type=type(exc).__name__)
            self._stopping.wait(RECONNECT_PAUSE)
        except Exception as exc:  # the thread must outlive any one pass
            log.exception("dispatch_pass_failed", error=str(exc))
            self._stopping.wait(RECONNECT_PAUSE)
