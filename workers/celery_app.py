"""The Celery app: durable priority queues, persistent messages, publisher confirms, early acks.

Messages are acknowledged when a worker takes them, never held for the length of a job: the job's
row and its lease guard a claimed job, so a message only has to say "look at job X".
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from celery import Celery
from kombu import Exchange, Queue

from domain import queues
from domain.job_types import registry_for
from domain.settings import Settings

EXCHANGE = Exchange("hopper", type="direct", durable=True)


def known_queues(settings: Settings) -> list[str]:
    """Every queue there is: the built-in ones and each job type's, plugins' included."""
    return sorted(set(queues.ALL_QUEUES) | registry_for(settings.job_types).queues)


def declared_queues(names: Sequence[str] = queues.ALL_QUEUES) -> list[Queue]:
    # x-max-priority is part of a durable queue's identity: it is set from the first release,
    # since changing it later means deleting and re-creating the queue.
    return [
        Queue(
            name,
            EXCHANGE,
            routing_key=name,
            durable=True,
            queue_arguments={"x-max-priority": queues.MAX_PRIORITY},
        )
        for name in names
    ]


def create_celery(settings: Settings, *, publisher: bool = False) -> Celery:
    """The app for a worker, or (``publisher``) for a process that only publishes: the API and
    the scheduler, whose every socket operation is bounded by the publish timeout."""
    app = Celery("hopper", broker=settings.broker_url, set_as_current=False)
    app.conf.update(
        task_queues=declared_queues(known_queues(settings)),
        task_default_queue=queues.DEFAULT,
        task_default_exchange=EXCHANGE.name,
        task_default_routing_key=queues.DEFAULT,
        task_default_priority=queues.PRIORITY_VALUES["normal"],
        task_queue_max_priority=queues.MAX_PRIORITY,
        task_acks_late=False,
        task_ignore_result=True,
        task_serializer="json",
        accept_content=["json"],
        worker_prefetch_multiplier=1,
        worker_hijack_root_logger=False,
        worker_redirect_stdouts=False,
        broker_connection_timeout=settings.publish_timeout_seconds,
        broker_connection_retry_on_startup=True,
        broker_transport_options=_transport_options(settings, publisher),
        broker_pool_limit=10,
    )
    return app


def _transport_options(settings: Settings, publisher: bool) -> dict[str, Any]:
    scheme = settings.broker_url.split("://", 1)[0]
    if scheme in ("amqp", "pyamqp"):
        # The publisher waits for a whole batch's confirms at once (workers.publisher.Confirms);
        # kombu's own confirm_publish would wait after each message.
        options: dict[str, Any] = {"confirm_publish": not publisher}
        if publisher:
            timeout = settings.publish_timeout_seconds
            options.update(connect_timeout=timeout, read_timeout=timeout, write_timeout=timeout)
        return options
    if scheme == "filesystem":
        folder = (settings.var_dir / "broker").absolute()
        for sub in ("queue", "processed", "control"):
            (folder / sub).mkdir(parents=True, exist_ok=True)
        return {
            "data_folder_in": str(folder / "queue"),
            "data_folder_out": str(folder / "queue"),
            "processed_folder": str(folder / "processed"),
            "control_folder": str(folder / "control"),
            "store_processed": False,
            "polling_interval": 0.1,
        }
    return {}
