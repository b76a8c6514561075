"""``hopper worker``: a Celery worker on the given queues; with none given, every queue (a pool
for the job queues, one for ``http`` and one for ``webhooks``, under one parent:
``hopper.worker_tree``).

Job queues run in a prefork pool (a stuck handler can be ended with its process); ``http`` jobs
and ``webhooks`` deliveries, each alone, run in a thread pool, since they mostly wait on the
network and a slow target must not hold a process.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Sequence
from typing import Any

from celery.signals import setup_logging

from domain import queues
from domain.settings import ConfigError, Settings
from hopper import telemetry
from hopper.bootstrap import Container, bootstrap
from hopper.graceful_stop import GracefulStop
from hopper.worker_tree import WorkerTree
from workers.celery_app import create_celery, known_queues
from workers.delivery import DeliveryRunner
from workers.http_targets import GuardedTargets
from workers.outbound import OutboundPolicy
from workers.runner import JobRunner
from workers.tasks import register_tasks

EXIT_STUCK_HANDLER = 70
DELIVERY_THREADS = 16


def run_worker(settings: Settings, queue_names: str | None, concurrency: int | None) -> int:
    if queue_names is None:  # the tree's parent serves the metrics once its pools are started
        pools = every_pool(settings, concurrency)
        return WorkerTree(pools, started=lambda: telemetry.serve(settings)).run()
    telemetry.serve(settings)
    names = _queues(queue_names, known_queues(settings))
    threaded = len(names) == 1 and names[0] in queues.THREADED_QUEUES
    threads = concurrency or DELIVERY_THREADS
    app = create_celery(settings)
    # Our logging (JSON, redacted) is set up already; Celery must not add handlers of its own.
    setup_logging.connect(_keep_our_logging, weak=False)
    wiring = _PerProcess(settings, pool_size=threads + 1 if threaded else 2)
    register_tasks(app, wiring.job_runner, wiring.delivery_runner)
    GracefulStop(settings.worker_grace_seconds, wiring.hand_back).connect()
    argv = [
        "worker",
        "-Q",
        ",".join(names),
        "--loglevel",
        settings.log_level,
        "-n",
        f"hopper-{names[0]}-{os.getpid()}@%h",  # unique: several pools may share a host
        "--without-gossip",
        "--without-mingle",
    ]
    if threaded:
        argv += ["--pool", "threads", "-c", str(threads)]
    elif concurrency:
        argv += ["-c", str(concurrency)]
    app.worker_main(argv)
    return 0


def every_pool(settings: Settings, concurrency: int | None) -> list[list[str]]:
    """The arguments of each pool that together serve every queue: the job queues (every job
    type's, plugins' included, sized by ``-c``), then ``http`` jobs and webhook deliveries in
    thread pools of their own."""
    prefork = [q for q in known_queues(settings) if q not in queues.THREADED_QUEUES]
    jobs = ["-Q", ",".join(prefork)] + (["-c", str(concurrency)] if concurrency else [])
    return [jobs, *(["-Q", name] for name in queues.THREADED_QUEUES)]


def _queues(queue_names: str, known: list[str]) -> list[str]:
    names = [q.strip() for q in queue_names.split(",") if q.strip()]
    unknown = sorted(set(names) - set(known))
    if unknown or not names:
        raise ConfigError("-Q", f"unknown queues {', '.join(unknown)}; known: {', '.join(known)}")
    return names


class _PerProcess:
    """The wiring of each pool process, built on its first task, after the fork: its own
    engine, sockets and connection pools."""

    def __init__(self, settings: Settings, pool_size: int) -> None:
        self._settings = settings
        self._pool_size = pool_size
        self._main_pid = os.getpid()
        self._lock = threading.Lock()
        self._built: dict[int, tuple[Container, JobRunner, DeliveryRunner]] = {}

    def job_runner(self) -> JobRunner:
        return self._get()[1]

    def delivery_runner(self) -> DeliveryRunner:
        return self._get()[2]

    def hand_back(self, workers: Sequence[str]) -> list[Any]:
        """From the pool's main process, once its pool processes are ended."""
        return self._get()[0].execution.hand_back(workers)

    def _get(self) -> tuple[Container, JobRunner, DeliveryRunner]:
        pid = os.getpid()
        with self._lock:
            if pid not in self._built:
                self._built[pid] = self._build(in_pool_process=pid != self._main_pid)
            return self._built[pid]

    def _build(self, in_pool_process: bool) -> tuple[Container, JobRunner, DeliveryRunner]:
        wiring = bootstrap(self._settings, pool_size=self._pool_size)
        outbound = wiring.outbound()
        jobs = JobRunner(
            wiring.execution,
            wiring.registry,
            grace_seconds=self._settings.stop_grace_seconds,
            end_process=_end_process if in_pool_process else None,
            http=GuardedTargets(
                wiring.http_targets,
                outbound,
                OutboundPolicy.from_settings(self._settings),
                self._settings.http_jobs_allow_private,
            ),
        )
        return wiring, jobs, DeliveryRunner(wiring.deliveries, outbound)


def _keep_our_logging(**_kwargs: Any) -> None:
    return None


def _end_process() -> Any:
    """A handler would not stop: its attempt is recorded; end the pool process that runs it."""
    sys.stderr.flush()
    os._exit(EXIT_STUCK_HANDLER)
