"""The real ``Publisher``: run-job commands onto RabbitMQ (or the embedded broker).

A publish is bounded in time and never retried here: connecting, writing and waiting for the
broker's confirm each give up after ``HOPPER_PUBLISH_TIMEOUT_SECONDS``. A broker that is down, or
that accepts connections and swallows packets, costs the caller that long and no longer; the jobs
are committed already and the scheduler publishes them once the broker answers again.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import structlog
from celery import Celery

from domain import queues
from domain.ports import Command, PublishFailed, RunJob

log = structlog.get_logger(__name__)


class CeleryPublisher:
    """One broker connection per process, shared under a lock (kombu connections are not
    thread-safe), dropped and remade after any failure.

    After a failure the publisher rests for ``rest`` seconds, failing at once: while the broker
    is away, one caller per rest pays the timeout rather than every caller. A caller that cannot
    have the connection within the timeout does not wait for it either.
    """

    def __init__(self, app: Celery, timeout: float, rest: float = 1.0) -> None:
        self._app = app
        self._timeout = timeout
        self._rest = rest
        self._lock = threading.Lock()
        self._connection: Any = None
        self._producer: Any = None
        self._resting_until = 0.0

    def publish(self, commands: list[Command]) -> None:
        if time.monotonic() < self._resting_until:
            raise PublishFailed("the broker failed a moment ago; the scheduler will publish")
        if not self._lock.acquire(timeout=self._timeout):
            raise PublishFailed("the broker connection is busy; the scheduler will publish")
        try:
            producer = self._ready_producer()
            for command in commands:
                self._send(producer, command)
        except Exception as exc:
            # Whatever the broker did, the jobs are committed: the scheduler publishes them.
            self._discard()
            self._resting_until = time.monotonic() + self._rest
            raise PublishFailed(f"{type(exc).__name__}: {exc}") from exc
        finally:
            self._lock.release()

    def close(self) -> None:
        with self._lock:
            self._discard()

    def _send(self, producer: Any, command: Command) -> None:
        if isinstance(command, RunJob):
            task, args, queue = queues.RUN_JOB_TASK, [command.job_id], command.queue
            priority, limit = queues.PRIORITY_VALUES[command.priority], command.hard_time_limit
        else:
            task, args, queue = queues.DELIVER_WEBHOOK_TASK, [command.delivery_id], queues.WEBHOOKS
            priority, limit = queues.PRIORITY_VALUES["normal"], None
        self._app.send_task(
            task,
            args=args,
            kwargs={"request_id": command.request_id},
            queue=queue,
            routing_key=queue,
            priority=priority,
            time_limit=limit,
            producer=producer,
            retry=False,
            timeout=self._timeout,
            confirm_timeout=self._timeout,
        )

    def _ready_producer(self) -> Any:
        if self._producer is None:
            connection = self._app.connection_for_write()
            connection.ensure_connection(max_retries=0, timeout=self._timeout)  # one try
            self._connection = connection
            self._producer = self._app.amqp.Producer(connection)
        return self._producer

    def _discard(self) -> None:
        connection, self._connection, self._producer = self._connection, None, None
        if connection is not None:
            try:
                connection.collect()  # drop the socket without a closing handshake
            except Exception as exc:  # a broken connection may fail to close; it is gone anyway
                log.debug("broker_connection_discard_failed", error=str(exc))
