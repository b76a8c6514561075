"""Which reads may go to the replica (``hopper.read_routing``): only those of a request that
need not see the newest state, while the replica is near enough, and only once it has replayed
what the request's key last saw on the primary."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from hopper import read_routing
from hopper.read_routing import Positions, ReplicaReads, lsn_number


class Replica(ReplicaReads):
    """The replica's answers scripted: (replayed position, lag) per question."""

    def __init__(self, answers: list[tuple[int, float]], positions: Positions) -> None:
        self.clock_now = 0.0
        super().__init__(None, None, positions, 5.0, clock=lambda: self.clock_now)  # type: ignore[arg-type]
        self.answers = answers
        self.asked = 0

    def _ask(self) -> tuple[int, float]:
        self.asked += 1
        return self.answers[min(self.asked, len(self.answers)) - 1]


@pytest.fixture
def positions() -> Positions:
    return Positions(None)


@pytest.fixture(autouse=True)
def no_request() -> Iterator[None]:
    """Each test starts outside a request, as a thread between two requests is."""
    token = read_routing._current.set(None)
    yield
    read_routing._current.reset(token)


def test_positions_compare_as_numbers() -> None:
    assert lsn_number("0/16B3748") == 0x16B3748
    assert lsn_number("1/0") > lsn_number("0/FFFFFFFF")


def test_a_key_that_wrote_nothing_reads_a_near_replica(positions: Positions) -> None:
    replica = Replica([(100, 0.0)], positions)
    replica.begin("key_a", primary_only=False)
    assert replica.may_read()


def test_requests_for_the_newest_state_and_reads_outside_a_request_go_to_the_primary(
    positions: Positions,
) -> None:
    replica = Replica([(100, 0.0)], positions)
    assert not replica.may_read()  # no request: a worker's or the scheduler's read
    replica.begin("key_a", primary_only=True)
    assert not replica.may_read()


def test_a_replica_too_far_behind_serves_nobody(positions: Positions) -> None:
    replica = Replica([(100, 5.5)], positions)
    replica.begin(None, primary_only=False)
    assert not replica.may_read()
    assert replica.lag_seconds() == 5.5


def test_a_key_waits_for_the_replica_to_replay_what_it_saw(positions: Positions) -> None:
    positions.seen("key_a", 150)
    replica = Replica([(100, 0.1), (120, 0.1), (150, 0.1)], positions)
    replica.begin("key_a", primary_only=False)
    assert not replica.may_read()  # asked twice (the cached answer, then afresh): still behind
    assert replica.asked == 2
    assert replica.may_read()  # the third answer has it
    replica.begin("key_b", primary_only=False)
    assert replica.may_read()


def test_the_replicas_position_is_asked_at_most_every_tenth_of_a_second(
    positions: Positions,
) -> None:
    replica = Replica([(100, 0.0), (200, 0.0)], positions)
    assert replica.state() == (100, 0.0)
    replica.clock_now = 0.05
    assert replica.state() == (100, 0.0)
    replica.clock_now = 0.2
    assert replica.state() == (200, 0.0)


def test_a_request_that_touched_the_primary_keeps_its_position(positions: Positions) -> None:
    class Primary:
        def connect(self) -> Any:
            return Connection()

    class Connection:
        def __enter__(self) -> Any:
            return self

        def __exit__(self, *_: Any) -> None:
            return None

        def execute(self, _statement: Any) -> Any:
            return self

        def scalar_one(self) -> str:
            return "0/200"

    replica = Replica([(0x100, 0.0)], positions)
    replica._primary = Primary()  # type: ignore[assignment]
    replica.begin("key_a", primary_only=False)
    replica.end()  # read only on the replica: nothing to keep
    assert positions.last("key_a") == 0
    replica.begin("key_a", primary_only=False)
    replica.touched_primary()
    replica.end()
    assert positions.last("key_a") == 0x200
    positions.seen("key_a", 0x150)  # an older position never moves it back
    assert positions.last("key_a") == 0x200


def test_a_replica_that_does_not_answer_is_left_alone_for_a_while(positions: Positions) -> None:
    inf = float("inf")
    replica = Replica([(0, inf), (100, 0.0)], positions)
    replica.begin(None, primary_only=False)
    assert not replica.may_read() and replica.asked == 1
    replica.clock_now = 1.0
    assert not replica.may_read() and replica.asked == 1  # not asked again yet
    replica.clock_now = 2.5
    assert replica.may_read() and replica.asked == 2
