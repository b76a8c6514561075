"""``hopper worker``: a Celery worker on the given queues."""

from __future__ import annotations

from typing import Any

from domain import queues
from domain.settings import ConfigError, Settings
from hopper.bootstrap import Container, bootstrap
from workers.celery_app import create_celery
from workers.publisher import CeleryPublisher
from workers.tasks import register_tasks


def run_worker(settings: Settings, queue_names: str | None, concurrency: int | None) -> int:
    names = [
        q.strip() for q in (queue_names or ",".join(queues.ALL_QUEUES)).split(",") if q.strip()
    ]
    unknown = sorted(set(names) - set(queues.ALL_QUEUES))
    if unknown:
        raise ConfigError(
            "-Q", f"unknown queues {', '.join(unknown)}; known: {', '.join(queues.ALL_QUEUES)}"
        )
    app = create_celery(settings)
    holder: dict[str, Container] = {}

    def container() -> Any:
        # Built on first use in each pool process, after the fork.
        if "c" not in holder:
            holder["c"] = bootstrap(settings, publisher=CeleryPublisher(app), pool_size=2)
        return holder["c"]

    register_tasks(app, container)
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
