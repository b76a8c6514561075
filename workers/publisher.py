"""The real ``Publisher``: run-job commands onto RabbitMQ (or the embedded broker)."""

from __future__ import annotations

import structlog
from celery import Celery

from domain import queues
from domain.ports import PublishFailed, RunJob

log = structlog.get_logger(__name__)


class CeleryPublisher:
    def __init__(self, app: Celery) -> None:
        self._app = app

    def publish(self, commands: list[RunJob]) -> None:
        try:
            with self._app.producer_or_acquire() as producer:
                for command in commands:
                    self._app.send_task(
                        queues.RUN_JOB_TASK,
                        args=[command.job_id],
                        kwargs={"request_id": command.request_id},
                        queue=command.queue,
                        routing_key=command.queue,
                        priority=queues.PRIORITY_VALUES[command.priority],
                        producer=producer,
                        retry=False,
                    )
        except Exception as exc:
            # Whatever the broker did, the jobs are committed: the scheduler publishes them later.
            raise PublishFailed(f"{type(exc).__name__}: {exc}") from exc
