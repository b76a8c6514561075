"""The scheduler process: a loop with sub-second resolution that fires due schedules, makes
ready again the jobs whose message was lost, publishes due webhook deliveries, takes back jobs
whose lease lapsed, and says when a queue with due work has no consumer. Its dispatcher thread
(``workers.dispatcher``) hands the ready jobs to the broker."""

from __future__ import annotations

import signal
import threading
import time
from types import FrameType

import structlog

from domain.dispatch.service import DispatchService
from domain.errors import DomainError
from domain.schedules.firing import ScheduleFiring
from domain.services.scheduling import SchedulerService
from workers import instruments
from workers.consumer_watch import ConsumerWatch

log = structlog.get_logger(__name__)

IDLE_PAUSE = 0.25
PURGE_EVERY = 60.0
ERROR_PAUSE = 2.0


class SchedulerLoop:
    def __init__(
        self,
        scheduling: SchedulerService,
        dispatch: DispatchService,
        watch: ConsumerWatch | None = None,
        schedules: ScheduleFiring | None = None,
    ) -> None:
        self._scheduling = scheduling
        self._dispatch = dispatch
        self._watch = watch
        self._schedules = schedules
        self.stopping = threading.Event()
        self._next_purge = 0.0

    def run_forever(self) -> None:
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        log.info("scheduler_started")
        while not self.stopping.is_set():
            started = time.monotonic()
            pause = self.tick()
            # Had the pass taken no time, the next would start `pause` after this one started:
            # a slow pass shows as lag, as a starved process does.
            self.stopping.wait(pause)
            instruments.SCHEDULER_LAG.set(max(0.0, time.monotonic() - started - pause))
        log.info("scheduler_stopped")

    def tick(self) -> float:
        """One pass; returns how long to pause before the next."""
        try:
            fired = self._schedules.fire_due().fired if self._schedules is not None else 0
            lost = self._dispatch.forget_lost()
            deliveries = self._scheduling.publish_due_deliveries()
            reclaimed = self._scheduling.reclaim_lapsed()
            purged = self._purge_now_and_then()
            if self._watch is not None:
                self._watch.check()
        except DomainError as exc:
            log.warning("scheduler_pass_failed", error=str(exc), error_type=type(exc).__name__)
            instruments.SCHEDULER_PASSES.labels("failed").inc()
            return ERROR_PAUSE
        instruments.SCHEDULER_PASSES.labels("ok").inc()
        done = {
            "fired_schedules": fired,
            "lost_publishes": lost,
            "published_deliveries": deliveries,
            "reclaimed": reclaimed,
            "purged": purged,
        }
        for action, count in done.items():
            instruments.SCHEDULER_ACTIONS.labels(action).inc(count)
        if any(done.values()):
            log.info("scheduler_pass", **done)
            return 0.0
        return IDLE_PAUSE

    def _purge_now_and_then(self) -> int:
        """A batch per pass while there is a backlog; otherwise look once a minute."""
        if time.monotonic() < self._next_purge:
            return 0
        purged = self._scheduling.purge()
        if self._schedules is not None:
            purged += self._schedules.purge_runs()
        if not purged:
            self._next_purge = time.monotonic() + PURGE_EVERY
        return purged

    def _stop(self, signum: int, _frame: FrameType | None) -> None:
        log.info("scheduler_stopping", signal=signum)
        self.stopping.set()
