"""Retry schedules: exponential backoff with full jitter."""

from __future__ import annotations

import random


def backoff_seconds(
    attempt: int, base: float, cap: float, rng: random.Random | None = None
) -> float:
    """Delay before the run that follows failed attempt number ``attempt`` (1-based).

    Full jitter (a uniform draw below the exponential ceiling) spreads retries of jobs that failed
    together, so a recovering dependency is not hit by all of them at once.
    """
    ceiling = min(cap, base * 2 ** max(0, attempt - 1))
    return (rng or random).uniform(0, ceiling)
