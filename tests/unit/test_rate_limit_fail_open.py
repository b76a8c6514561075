"""While Redis does not answer, the limiter counts in process (fails open) and adds the time it
spends so to ``hopper_rate_limit_fail_open_seconds_total``, up to the first check Redis answers."""

from __future__ import annotations

from typing import Any

import pytest
import redis

from api import rate_limits
from api.meta.instruments import RATE_LIMIT_FAIL_OPEN
from api.rate_counter import Limit, MemoryCounter, Verdict


class FlakyRedis:
    def __init__(self) -> None:
        self.down = False

    def check(self, checks: Any) -> Verdict:
        if self.down:
            raise redis.ConnectionError("refused")
        return MemoryCounter().check(checks)


def seconds_failing_open() -> float:
    return RATE_LIMIT_FAIL_OPEN._value.get()  # type: ignore[attr-defined, no-any-return]


def test_the_time_spent_failing_open_is_counted_until_redis_answers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    now = [100.0]
    monkeypatch.setattr(rate_limits.time, "monotonic", lambda: now[0])
    store = FlakyRedis()
    limiter = rate_limits.Limiter([Limit.parse("10/second")[0]], [], [], store)  # type: ignore[arg-type]
    checks = [("key:k:all", limiter.every_route[0])]
    before = seconds_failing_open()

    limiter.check(checks)
    now[0] += 5
    assert seconds_failing_open() == before  # Redis answered: nothing failed open

    store.down = True
    assert limiter.check(checks).allowed  # counted here instead
    now[0] += 2
    limiter.check(checks)
    now[0] += 3
    store.down = False
    limiter.check(checks)  # answered again after 5 s down
    now[0] += 7
    limiter.check(checks)
    assert seconds_failing_open() - before == pytest.approx(5.0)
