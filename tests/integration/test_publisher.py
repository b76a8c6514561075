"""The real publisher against a broker that hangs and one that is gone, both on 127.0.0.1: a
publish fails within its timeout, and after a failure the publisher rests a second, failing at
once without touching the network, then tries the broker again."""

from __future__ import annotations

import json
import socket
import threading
import time
import uuid
from collections.abc import Iterator

import pytest
from kombu import Connection

from domain.ports import PublishFailed, RunJob
from domain.settings import Settings
from tests.services import BROKER_URL, real_env
from workers.celery_app import create_celery
from workers.publisher import CeleryPublisher

TIMEOUT = 0.4
# Connecting, writing and the broker's confirm are each bounded by the timeout.
SOCKET_OPERATIONS = 3
# Slack for a loaded machine; far below what an unbounded wait (or a retry) would take.
CEILING = TIMEOUT * SOCKET_OPERATIONS + 2.0
REST = 1.0  # the publisher's default, which the README promises
COMMAND = RunJob("job_publisher_test", "default", "normal")


class Swallower:
    """A broker that hangs: connections are accepted by the kernel and never answered. The test
    takes them from the accept queue itself, so it can count them without a thread."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0), backlog=64)
        self._listener.settimeout(30)  # only a broken machine waits this long for a probe
        self.port: int = self._listener.getsockname()[1]
        self._held: list[socket.socket] = []

    def connections_since_last_count(self) -> int:
        """How many connections were made since the last count. A probe connected now queues
        behind every earlier one (the accept queue is first in, first out), so once the probe
        comes out, all of them have been counted, however late they were."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as probe:
            marker = probe.getsockname()
            count = 0
            while True:
                connection, peer = self._listener.accept()
                if peer == marker:
                    connection.close()
                    return count
                self._held.append(connection)  # held open and never read: swallowed
                count += 1

    def close(self) -> None:
        for connection in self._held:
            connection.close()
        self._listener.close()


def publisher_for(port: int) -> CeleryPublisher:
    settings = Settings.from_env(
        real_env(
            BROKER_URL=f"amqp://guest:guest@127.0.0.1:{port}/hopper_publisher_test",
            HOPPER_PUBLISH_TIMEOUT_SECONDS=str(TIMEOUT),
        )
    )
    return CeleryPublisher(
        create_celery(settings, publisher=True), settings.publish_timeout_seconds
    )


def publish_failure(publisher: CeleryPublisher) -> PublishFailed:
    """The failure a publish ends in, which must come within ``CEILING``. It runs in a thread so
    that a publish that hangs fails this test instead of holding the suite."""
    outcome: list[BaseException | None] = []

    def publish() -> None:
        try:
            publisher.publish([COMMAND])
            outcome.append(None)
        except BaseException as exc:  # handed to the test, which says what it expected
            outcome.append(exc)

    thread = threading.Thread(target=publish, daemon=True)
    thread.start()
    thread.join(CEILING)
    assert outcome, f"the publish still ran after {CEILING:.1f}s: its timeout does not hold"
    assert isinstance(outcome[0], PublishFailed), f"expected PublishFailed, got {outcome[0]!r}"
    return outcome[0]


@pytest.fixture
def swallower() -> Iterator[Swallower]:
    endpoint = Swallower()
    yield endpoint
    endpoint.close()


def test_a_broker_that_swallows_everything_costs_one_timeout_then_a_rest(
    swallower: Swallower,
) -> None:
    publisher = publisher_for(swallower.port)
    try:
        publish_failure(publisher)
        assert swallower.connections_since_last_count() == 1
        resting = publish_failure(publisher)
        assert "a moment ago" in str(resting)
        assert swallower.connections_since_last_count() == 0, "the rest touched the network"
        time.sleep(REST + 0.2)  # past the rest, however slowly the lines above ran
        tried = publish_failure(publisher)
        assert "a moment ago" not in str(tried)
        assert swallower.connections_since_last_count() == 1, "after the rest, no new try"
    finally:
        publisher.close()


def test_a_closed_port_fails_the_publish_then_rests() -> None:
    # Bound but not listening: connecting is refused, and no other test can take the port.
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        publisher = publisher_for(closed.getsockname()[1])
        try:
            assert "refused" in str(publish_failure(publisher)).lower()
            assert "a moment ago" in str(publish_failure(publisher))
        finally:
            publisher.close()


def test_a_batch_is_in_its_queue_once_its_publish_returns() -> None:
    """The batch's one wait for confirms covers every message in it: when ``publish`` returns,
    the broker holds all of them, on the queue each names, in order."""
    queue = f"publisher_test_{uuid.uuid4().hex[:8]}"
    batch = [RunJob(f"job_batch_{n}", queue, "normal") for n in range(300)]
    publisher = CeleryPublisher(create_celery(Settings.from_env(real_env()), publisher=True), 5.0)
    with Connection(BROKER_URL) as connection:
        channel = connection.channel()
        try:
            publisher.publish(batch[:1])  # the first publish declares the queue
            publisher.publish(batch[1:])
            assert channel.queue_declare(queue, passive=True).message_count == len(batch)
            first = channel.basic_get(queue, no_ack=True)
            assert json.loads(first.body)[0] == ["job_batch_0"]
        finally:
            publisher.close()
            channel.queue_delete(queue)
