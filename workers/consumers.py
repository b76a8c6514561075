"""How many consumers each queue has, asked of RabbitMQ (the domain's ``QueueConsumers``).

A passive ``queue.declare`` answers with the queue's consumer count and changes nothing. The
embedded default's broker keeps no such count, so there the answer is "cannot tell" (None). Every
socket operation is bounded by the publisher app's timeouts: a broker that is away costs a
readiness probe or a scrape that long, and no longer.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any

import structlog
from amqp.exceptions import NotFound
from celery import Celery

log = structlog.get_logger(__name__)

AMQP_SCHEMES = ("amqp", "pyamqp")


class BrokerConsumers:
    def __init__(self, app: Celery, broker_url: str, timeout: float) -> None:
        self._app = app
        self._timeout = timeout
        self._counts_consumers = broker_url.split("://", 1)[0] in AMQP_SCHEMES

    def consumers(self, queues: Sequence[str]) -> dict[str, int] | None:
        if not self._counts_consumers:
            return None
        try:
            with self._app.connection_for_write() as connection:
                connection.ensure_connection(max_retries=0, timeout=self._timeout)  # one try
                return {name: _count(connection, name) for name in queues}
        except Exception as exc:  # any broker trouble means "cannot tell", never an error
            log.info("consumer_count_unavailable", error=type(exc).__name__)
            return None


def _count(connection: Any, queue: str) -> int:
    channel = connection.channel()
    try:
        return int(channel.queue_declare(queue=queue, passive=True).consumer_count)
    except NotFound:  # never declared: nobody consumes it
        return 0
    finally:
        with contextlib.suppress(Exception):  # the broker closes the channel after NotFound
            channel.close()
