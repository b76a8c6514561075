"""A worker's graceful stop, for scaling down at any time: SIGTERM starts Celery's warm shutdown
(it takes no new jobs and waits for the running ones); after ``HOPPER_WORKER_GRACE_SECONDS``
what still runs is handed back and the pool ends.

Handing back ends the pool's processes first, so no handler goes on with side effects, then
ends their attempts as ``worker_lost`` without counting them toward ``max_attempts`` and
publishes the jobs again at once: another worker starts them without waiting for their leases.
The thread pool of webhook deliveries simply ends: a delivery in flight is taken back when its
hold lapses, as after a crash.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sys
import threading
from collections.abc import Callable, Sequence
from typing import Any

import structlog
from celery.signals import worker_init, worker_shutting_down

from hopper import telemetry
from workers import instruments

log = structlog.get_logger(__name__)


class GracefulStop:
    """``hand_back`` takes the names of the pool's processes as their attempts record them
    (``host:pid``) and returns the jobs it handed back."""

    def __init__(self, grace_seconds: float, hand_back: Callable[[Sequence[str]], list[Any]]):
        self._grace = grace_seconds
        self._hand_back = hand_back
        self._worker: Any = None
        self._timer: threading.Timer | None = None

    def connect(self) -> None:
        worker_init.connect(self._remember, weak=False)
        worker_shutting_down.connect(self._begin, weak=False)

    def _remember(self, sender: Any = None, **_kwargs: Any) -> None:
        self._worker = sender

    def _begin(self, how: str = "Warm", **_kwargs: Any) -> None:
        if how != "Warm" or self._timer is not None:
            return  # a cold shutdown ends everything at once; a second SIGTERM changes nothing
        log.info("worker_stopping", grace_seconds=self._grace)
        self._timer = threading.Timer(self._grace, self.give_back)
        self._timer.daemon = True
        self._timer.start()

    def give_back(self) -> None:
        """The grace is over: end the pool's processes, hand their jobs back, and exit."""
        pids = self._pool_processes()
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        handed: list[Any] = []
        if pids:
            host = socket.gethostname()
            try:
                handed = self._hand_back([f"{host}:{pid}" for pid in pids])
            except Exception as exc:  # the leases still lapse, and the scheduler takes them back
                log.error("hand_back_failed", error=str(exc), error_type=type(exc).__name__)
        for job in handed:
            instruments.JOBS_FINISHED.labels(job.type, job.queue, "handed_back").inc()
        job_ids = [job.id for job in handed]
        log.warning("worker_stopped_after_grace", handed_back=len(handed), job_ids=job_ids)
        sys.stdout.flush()
        sys.stderr.flush()
        telemetry.release()
        os._exit(0)

    def _pool_processes(self) -> list[int]:
        pool = getattr(self._worker, "pool", None)
        info = getattr(pool, "info", None) or {}
        return [pid for pid in info.get("processes", []) if pid and pid != os.getpid()]
