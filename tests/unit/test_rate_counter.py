"""The sliding-window counter, in process (the same rule the Redis script applies)."""

from __future__ import annotations

from api.rate_counter import Limit, MemoryCounter


class Clock:
    def __init__(self, at: float = 1_000_000.0) -> None:
        self.at = at

    def __call__(self) -> float:
        return self.at


def test_limits_are_parsed_from_the_settings_text() -> None:
    assert Limit.parse("2000 per 10 seconds;20/minute") == [Limit(2000, 10), Limit(20, 60)]


def test_a_fresh_bucket_allows_exactly_its_amount_in_a_window() -> None:
    counter = MemoryCounter(Clock())
    five = Limit(5, 10)
    assert [counter.check([("k", five)]).allowed for _ in range(6)] == [True] * 5 + [False]


def test_the_previous_window_weighs_by_the_share_of_it_still_in_the_last_span() -> None:
    clock = Clock(1_000_000.0)  # the start of a 10 s window
    counter = MemoryCounter(clock)
    ten = Limit(10, 10)
    assert all(counter.check([("k", ten)]).allowed for _ in range(10))
    clock.at += 12.5  # a quarter into the next window: 75 % of the previous one still counts
    allowed = [counter.check([("k", ten)]).allowed for _ in range(4)]
    assert allowed == [True, True, False, False]  # 7.5 + 2 fits, 7.5 + 3 does not


def test_a_bucket_that_is_full_says_when_to_come_back() -> None:
    clock = Clock(1_000_000.0)
    counter = MemoryCounter(clock)
    ten = Limit(10, 10)
    for _ in range(10):
        counter.check([("k", ten)])
    refused = counter.check([("k", ten)])
    assert not refused.allowed
    wait = refused.tightest().retry_after()
    assert 10 <= wait <= 11
    clock.at += wait
    assert counter.check([("k", ten)]).allowed


def test_a_request_refused_by_one_limit_still_counts_against_the_others() -> None:
    counter = MemoryCounter(Clock())
    every, creating = Limit(3, 10), Limit(1, 10)
    both = [("k:all", every), ("k:create", creating)]
    assert [counter.check(both).allowed for _ in range(2)] == [True, False]
    assert [counter.check([("k:all", every)]).allowed for _ in range(2)] == [True, False]


def test_headers_describe_the_limit_nearest_to_exhaustion() -> None:
    counter = MemoryCounter(Clock(1_000_000.0))
    verdict = counter.check([("a", Limit(100, 10)), ("b", Limit(3, 10))])
    tightest = verdict.tightest()
    assert (tightest.limit.amount, tightest.remaining) == (3, 2)
    assert tightest.reset_at == 1_000_010
