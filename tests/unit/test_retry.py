"""Backoff with full jitter: ``domain.retry.backoff_seconds``."""

from __future__ import annotations

import random

import pytest

from domain.retry import backoff_seconds


@pytest.mark.parametrize(
    ("attempt", "ceiling"),
    [(1, 1.0), (2, 2.0), (3, 4.0), (5, 16.0), (12, 2048.0), (13, 3600.0), (25, 3600.0)],
)
def test_draws_stay_below_min_of_cap_and_exponential_ceiling(attempt: int, ceiling: float) -> None:
    rng = random.Random(attempt)
    draws = [backoff_seconds(attempt, 1.0, 3600.0, rng) for _ in range(500)]
    assert all(0 <= d <= ceiling for d in draws)
    # Full jitter spreads over the whole range, not just near the ceiling.
    assert min(draws) < ceiling * 0.1
    assert max(draws) > ceiling * 0.9


def test_base_scales_the_schedule() -> None:
    rng = random.Random(7)
    draws = [backoff_seconds(3, 0.25, 100.0, rng) for _ in range(300)]
    assert max(draws) <= 1.0
    assert max(draws) > 0.9


def test_attempt_zero_or_less_uses_the_base() -> None:
    rng = random.Random(3)
    assert all(backoff_seconds(0, 2.0, 60.0, rng) <= 2.0 for _ in range(100))
    assert all(backoff_seconds(-4, 2.0, 60.0, rng) <= 2.0 for _ in range(100))


def test_same_seed_same_delays() -> None:
    first = [backoff_seconds(n, 1.0, 60.0, random.Random(42)) for n in range(1, 8)]
    second = [backoff_seconds(n, 1.0, 60.0, random.Random(42)) for n in range(1, 8)]
    assert first == second


def test_the_draw_is_uniform_between_zero_and_the_ceiling() -> None:
    class Recorder(random.Random):
        def uniform(self, a: float, b: float) -> float:
            self.bounds = (a, b)
            return b

    rng = Recorder()
    assert backoff_seconds(4, 1.5, 10.0, rng) == 10.0
    assert rng.bounds == (0, 10.0)
    assert backoff_seconds(2, 1.5, 10.0, rng) == 3.0
    assert rng.bounds == (0, 3.0)


def test_without_a_generator_it_still_stays_in_bounds() -> None:
    assert all(0 <= backoff_seconds(2, 1.0, 3600.0) <= 2.0 for _ in range(200))
