"""The real ``Publisher``: run-job commands onto RabbitMQ (or the embedded broker).

A publish hands over a batch of commands and waits once for the broker's confirms of all of them
(the channel is in confirm mode; the broker numbers what is published on it 1, 2, … and acks each,
or all up to a number). It is bounded in time and never retried here: connecting, writing and
waiting for the confirms each give up after ``HOPPER_PUBLISH_TIMEOUT_SECONDS``. A broker that is
down, or that accepts connections and swallows packets, costs the caller that long and no longer;
the jobs are committed already and the scheduler publishes them once the broker answers again.
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
        self._confirms = Confirms(None)
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
            self._confirms.wait(self._connection, self._timeout)
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
        )
        self._confirms.sent += 1

    def _ready_producer(self) -> Any:
        if self._producer is None:
            connection = self._app.connection_for_write()
            connection.ensure_connection(max_retries=0, timeout=self._timeout)  # one try
            self._connection = connection
            self._producer = self._app.amqp.Producer(connection)
            self._confirms = Confirms(self._producer.channel)
        return self._producer

    def _discard(self) -> None:
        connection, self._connection, self._producer = self._connection, None, None
        if connection is not None:
            try:
                connection.collect()  # drop the socket without a closing handshake
            except Exception as exc:  # a broken connection may fail to close; it is gone anyway
                log.debug("broker_connection_discard_failed", error=str(exc))


class Confirms:
    """The broker's confirms on one channel: how many messages were published there, and up to
    which number all are acked. A nack (the broker could not keep a message) fails the batch.
    The embedded broker writes each message to a file before the publish returns, and has no
    confirms to wait for."""

    def __init__(self, channel: Any) -> None:
        self.sent = 0
        self._through = 0  # every message numbered up to this one is acked
        self._singles: set[int] = set()  # acked alone, beyond ``_through``
        self._nacked = False
        self._confirming = hasattr(channel, "confirm_select")
        if self._confirming:
            channel.confirm_select()
            channel.events["basic_ack"].add(self._ack)
            channel.events["basic_nack"].add(self._nack)

    def wait(self, connection: Any, timeout: float) -> None:
        """Return once every message sent so far is acked; raise if one is nacked, or after
        ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while self._confirming and self._through < self.sent and not self._nacked:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise PublishFailed(f"the broker did not confirm within {timeout} s")
            connection.drain_events(timeout=remaining)
        if self._nacked:
            raise PublishFailed("the broker refused a message (nack)")

    def _ack(self, tag: int, multiple: bool) -> None:
        if multiple:
            self._through = max(self._through, tag)
            self._singles = {single for single in self._singles if single > tag}
        else:
            self._singles.add(tag)
        while self._through + 1 in self._singles:
            self._through += 1
            self._singles.discard(self._through)

    def _nack(self, _tag: int, _multiple: bool) -> None:
        self._nacked = True
