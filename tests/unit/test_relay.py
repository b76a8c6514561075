"""The outbox relay and the backlog it drains: a request's publish never waits on the broker,
what waits goes out in order and in batches, and whatever the broker does not take (or a stop
leaves behind) is handed back to the scheduler rather than dropped."""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import pytest

from domain.dispatch.backlog import Backlog
from domain.ports import Command, DeliverWebhook, PublishFailed, RunJob
from workers.publisher import Confirms
from workers.relay import Relay

WAIT = 10.0  # only a broken relay takes this long


def commands(count: int, start: int = 0) -> list[Command]:
    return [RunJob(f"job_{n}", "default", "normal") for n in range(start, start + count)]


class GatedPublisher:
    """A broker that takes batches only while its gate is open, and can refuse them."""

    def __init__(self) -> None:
        self.batches: list[list[Command]] = []
        self.gate = threading.Event()
        self.gate.set()
        self.broken = False
        self.entered = threading.Event()

    def publish(self, batch: list[Command]) -> None:
        self.entered.set()
        assert self.gate.wait(WAIT), "the test never opened the gate"
        if self.broken:
            raise PublishFailed("the broker is down")
        self.batches.append(list(batch))

    @property
    def published(self) -> list[Command]:
        return [command for batch in self.batches for command in batch]


class Handed:
    def __init__(self) -> None:
        self.back: list[Command] = []

    def __call__(self, batch: list[Command]) -> None:
        self.back.extend(batch)


@pytest.fixture
def broker() -> GatedPublisher:
    return GatedPublisher()


@pytest.fixture
def handed() -> Handed:
    return Handed()


@pytest.fixture
def relay(broker: GatedPublisher, handed: Handed) -> Iterator[Relay]:
    relay = Relay(broker, handed, batch_size=500)
    relay.start()
    yield relay
    broker.gate.set()
    relay.close(WAIT)


def test_a_publish_returns_while_the_broker_is_still_busy(
    relay: Relay, broker: GatedPublisher
) -> None:
    broker.gate.clear()
    relay.publish(commands(1))  # returns though the broker holds the relay's thread
    assert broker.entered.wait(WAIT)
    assert broker.published == []
    broker.gate.set()
    assert relay.flush(WAIT)
    assert broker.published == commands(1)


def test_what_waits_goes_out_in_order_in_batches(relay: Relay, broker: GatedPublisher) -> None:
    broker.gate.clear()
    relay.publish(commands(1))
    assert broker.entered.wait(WAIT)  # the first batch holds the thread; the rest wait
    relay.publish(commands(700, start=1))
    relay.publish(commands(300, start=701))
    broker.gate.set()
    assert relay.flush(WAIT)
    assert broker.published == commands(1001)
    assert [len(batch) for batch in broker.batches] == [1, 500, 500]


def test_a_batch_the_broker_refuses_is_handed_back(
    relay: Relay, broker: GatedPublisher, handed: Handed
) -> None:
    broker.broken = True
    relay.publish(commands(3))
    assert relay.flush(WAIT)
    assert handed.back == commands(3)
    broker.broken = False
    relay.publish(commands(2, start=3))
    assert relay.flush(WAIT)
    assert broker.published == commands(2, start=3)
    assert handed.back == commands(3), "a later batch was handed back too"


def busy_relay(broker: GatedPublisher, handed: Handed) -> Relay:
    """A started relay whose first batch (one command) the broker holds, with four waiting."""
    relay = Relay(broker, handed)
    relay.start()
    broker.gate.clear()
    relay.publish(commands(1))
    assert broker.entered.wait(WAIT)
    relay.publish(commands(4, start=1))
    return relay


def test_a_relay_that_is_closed_publishes_what_waits(
    broker: GatedPublisher, handed: Handed
) -> None:
    relay = busy_relay(broker, handed)
    threading.Timer(0.05, broker.gate.set).start()
    relay.close(WAIT)
    assert broker.published == commands(5)
    assert handed.back == []


def test_a_stop_hands_back_what_it_could_not_publish(
    broker: GatedPublisher, handed: Handed
) -> None:
    relay = busy_relay(broker, handed)
    relay.close(0.05)  # the broker still holds the first batch
    assert handed.back == commands(4, start=1)
    broker.gate.set()


def test_a_hand_back_that_fails_does_not_stop_the_relay(broker: GatedPublisher) -> None:
    def failing(_batch: list[Command]) -> None:
        raise RuntimeError("the database is away too")

    relay = Relay(broker, failing)
    relay.start()
    broker.broken = True
    relay.publish(commands(1))
    assert relay.flush(WAIT)
    broker.broken = False
    relay.publish(commands(1, start=1))
    assert relay.flush(WAIT)
    assert broker.published == commands(1, start=1)
    relay.close(WAIT)


def test_a_full_backlog_hands_back_the_overflow_at_once(
    broker: GatedPublisher, handed: Handed
) -> None:
    relay = Relay(broker, handed, backlog=Backlog(limit=3))  # never started: nothing drains
    relay.publish(commands(5))
    assert handed.back == commands(2, start=3)
    relay.close(0.0)
    assert handed.back == commands(2, start=3) + commands(3)


def test_the_backlog_keeps_order_across_kinds() -> None:
    backlog = Backlog()
    mixed: list[Command] = [RunJob("job_a", "default", "high"), DeliverWebhook("dlv_a")]
    assert backlog.add(mixed) == []
    assert backlog.take(1) == mixed[:1]
    assert len(backlog) == 1
    assert backlog.take(10) == mixed[1:]
    assert backlog.take(10) == []


class FakeChannel:
    def __init__(self) -> None:
        self.events: dict[str, set[Any]] = defaultdict(set)
        self.selected = False

    def confirm_select(self) -> None:
        self.selected = True

    def ack(self, tag: int, multiple: bool = False) -> None:
        for callback in self.events["basic_ack"]:
            callback(tag, multiple)

    def nack(self, tag: int) -> None:
        for callback in self.events["basic_nack"]:
            callback(tag, False)


class FakeConnection:
    """Delivers the broker's answers one per drain, as a socket would."""

    def __init__(self, answers: list[Any]) -> None:
        self.answers = answers
        self.drains = 0

    def drain_events(self, timeout: float) -> None:
        self.drains += 1
        if not self.answers:
            raise TimeoutError("nothing more from the broker")
        self.answers.pop(0)()


def test_confirms_wait_until_every_message_is_acked_out_of_order_or_at_once() -> None:
    channel = FakeChannel()
    confirms = Confirms(channel)
    assert channel.selected
    confirms.sent = 5
    answers = [lambda: channel.ack(2), lambda: channel.ack(1), lambda: channel.ack(5, True)]
    connection = FakeConnection(answers)
    confirms.wait(connection, WAIT)
    assert connection.drains == 3
    confirms.sent = 7
    connection = FakeConnection([lambda: channel.ack(7), lambda: channel.ack(6)])
    confirms.wait(connection, WAIT)
    assert connection.drains == 2


def test_confirms_fail_on_a_nack_and_on_silence() -> None:
    channel = FakeChannel()
    confirms = Confirms(channel)
    confirms.sent = 2
    with pytest.raises(PublishFailed, match="nack"):
        confirms.wait(FakeConnection([lambda: channel.ack(1), lambda: channel.nack(2)]), WAIT)
    silent = Confirms(FakeChannel())
    silent.sent = 1
    with pytest.raises(PublishFailed, match="did not confirm"):
        silent.wait(FakeConnection([]), 0.0)


def test_a_broker_without_confirms_is_not_waited_for() -> None:
    confirms = Confirms(object())  # the embedded broker's channel
    confirms.sent = 3
    connection = FakeConnection([])
    confirms.wait(connection, WAIT)
    assert connection.drains == 0
