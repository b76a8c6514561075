"""``hopper worker``: a Celery worker on the given queues."""

from __future__ import annotations

import os
import sys

from domain import queues
from domain.settings import ConfigError, Settings
from hopper.bootstrap import bootstrap
from workers.celery_app import create_celery
from workers.runner import JobRunner
from workers.tasks import register_tasks

EXIT_STUCK_HANDLER = 70


def run_worker(settings: Settings, queue_names: str | None, concurrency: int | None) -> int:
    names = [
        q.strip() for q in (queue_names or ",".join(queues.ALL_QUEUES)).split(",") if q.strip()
    ]
    unknown = sorted(set(names) - set(queues.ALL_QUEUES))
    if unknown:
        known = ", ".join(queues.ALL_QUEUES)
        raise ConfigError("-Q", f"unknown queues {', '.join(unknown)}; known: {known}")
    app = create_celery(settings)
    main_pid = os.getpid()
    runners: dict[int, JobRunner] = {}

    def runner() -> JobRunner:
        # Built on first use in each pool process, after the fork: its own engine and sockets.
        pid = os.getpid()
        if pid not in runners:
            wiring = bootstrap(settings, pool_size=2)
            in_pool_process = pid != main_pid
            runners[pid] = JobRunner(
                wiring.execution,
                wiring.registry,
                grace_seconds=settings.stop_grace_seconds,
                end_process=_end_process if in_pool_process else None,
            )
        return runners[pid]

    register_tasks(app, runner)
    argv = [
        "worker",
        "-Q",
        ",".join(names),
        "--loglevel",
        settings.log_level,
        "-n",
        "hopper@%h",
        "--without-gossip",
        "--without-mingle",
    ]
    if concurrency:
        argv += ["-c", str(concurrency)]
    app.worker_main(argv)
    return 0


def _end_process() -> None:
    """A handler would not stop: its attempt is recorded; end the pool process that runs it."""
    sys.stderr.flush()
    os._exit(EXIT_STUCK_HANDLER)
