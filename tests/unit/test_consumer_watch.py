"""The scheduler's watch for queues with due work and no consumer."""

from __future__ import annotations

from structlog.testing import capture_logs

from domain.services.metrics import StarvedQueue
from workers.consumer_watch import CHECK_EVERY, REPEAT_EVERY, ConsumerWatch


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def said(logs: list[dict]) -> list[str]:
    return [entry["queue"] for entry in logs if entry["event"] == "queue_without_consumer"]


def test_a_queue_is_reported_on_its_second_check_then_once_a_minute_while_it_lasts() -> None:
    clock, starved = Clock(), [StarvedQueue("webhooks", 3)]
    watch = ConsumerWatch(lambda: starved, clock)
    with capture_logs() as logs:
        watch.check()
        assert said(logs) == []  # a pool may still be starting
        clock.now += CHECK_EVERY
        watch.check()
        assert said(logs) == ["webhooks"]
        clock.now += CHECK_EVERY
        watch.check()
        assert said(logs) == ["webhooks"]  # not again within the minute
        clock.now += REPEAT_EVERY
        watch.check()
        assert said(logs) == ["webhooks", "webhooks"]


def test_checks_are_spaced_and_a_queue_that_recovers_starts_afresh() -> None:
    clock, calls = Clock(), []
    starved = [StarvedQueue("default", 1)]

    def find() -> list[StarvedQueue]:
        calls.append(clock.now)
        return starved

    watch = ConsumerWatch(find, clock)
    with capture_logs() as logs:
        watch.check()
        clock.now += 1
        watch.check()
        assert len(calls) == 1
        clock.now += CHECK_EVERY
        starved = []
        watch.check()
        clock.now += CHECK_EVERY
        starved = [StarvedQueue("default", 1)]
        watch.check()
        assert said(logs) == []  # seen once since it recovered
