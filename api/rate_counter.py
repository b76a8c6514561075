"""Counting requests against rate limits: a sliding-window counter, every limit of a request
checked and counted in one call.

Each limit of ``amount`` per ``seconds`` keeps one counter per fixed window of ``seconds``. A
request is allowed when the current window's count, plus the previous window's weighted by the
share of it that still lies within the last ``seconds``, stays within ``amount``. It is exact on a
steady rate and never lets more than ``amount`` through in any window-aligned span; it costs two
small keys a bucket, whatever the limit. A request counts against each of its limits that has
room, and is refused if any has none (so a client that loops on its 429s stays limited).

In Redis, one script does it all for a request (one round trip), by Redis's clock, so that every
web process counts alike. In process (the embedded default, and while Redis is away) a dict does
the same under a lock.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from limits import parse_many

_SCRIPT = """
local now = redis.call('TIME')
local at = tonumber(now[1]) + tonumber(now[2]) / 1000000
local answer, allowed = {0, tostring(at)}, 1
for i, key in ipairs(KEYS) do
  local amount, seconds = tonumber(ARGV[2 * i - 1]), tonumber(ARGV[2 * i])
  local window = math.floor(at / seconds)
  local name = key .. ':' .. window
  local current = tonumber(redis.call('GET', name) or '0')
  local previous = tonumber(redis.call('GET', key .. ':' .. (window - 1)) or '0')
  local elapsed = at / seconds - window
  if previous * (1 - elapsed) + current + 1 > amount then
    allowed = 0
  else
    current = redis.call('INCR', name)
    redis.call('EXPIRE', name, 2 * seconds + 1)
  end
  table.insert(answer, current)
  table.insert(answer, previous)
  table.insert(answer, tostring(elapsed))
end
answer[1] = allowed
return answer
"""


@dataclass(frozen=True)
class Limit:
    amount: int
    seconds: int

    @classmethod
    def parse(cls, text: str) -> list[Limit]:
        """ "2000 per 10 seconds", "20/minute", or several joined by ";"."""
        return [cls(item.amount, item.get_expiry()) for item in parse_many(text)]


@dataclass(frozen=True)
class Count:
    """One limit's state after a check: what the request was held to."""

    limit: Limit
    current: int
    previous: int
    elapsed: float  # the share of the current window that has passed
    at: float  # the counter's clock, epoch seconds

    @property
    def used(self) -> float:
        return self.previous * (1 - self.elapsed) + self.current

    @property
    def remaining(self) -> int:
        return max(0, math.floor(self.limit.amount - self.used))

    @property
    def reset_at(self) -> int:
        """When the current window ends (epoch seconds)."""
        window_start = self.at - self.elapsed * self.limit.seconds
        return math.ceil(window_start + self.limit.seconds)

    def retry_after(self) -> int:
        """Seconds until one more request would be allowed: once the previous window's weight
        has fallen far enough, or else once the current window has become the previous."""
        room = self.limit.amount - self.current - 1
        if room >= 0 and self.previous > 0:
            wait = (1 - room / self.previous - self.elapsed) * self.limit.seconds
        else:
            wait = (1 - self.elapsed) * self.limit.seconds + self.limit.seconds * (
                self.current + 1 - self.limit.amount
            ) / max(1, self.current)
        return max(1, math.ceil(wait))


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    counts: Sequence[Count]

    def tightest(self) -> Count:
        """The limit nearest to being exhausted: the one the headers describe."""
        refused = [c for c in self.counts if c.remaining == 0]
        return min(refused or self.counts, key=lambda c: (c.remaining, -c.retry_after()))


class RedisCounter:
    def __init__(self, client: Any) -> None:
        self._script = client.register_script(_SCRIPT)

    def check(self, checks: Sequence[tuple[str, Limit]]) -> Verdict:
        keys = [f"hopper:rate:{bucket}:{limit.amount}:{limit.seconds}" for bucket, limit in checks]
        args = [value for _, limit in checks for value in (limit.amount, limit.seconds)]
        answer = self._script(keys=keys, args=args)
        at = float(answer[1])
        counts = [
            Count(
                limit, int(answer[2 + 3 * i]), int(answer[3 + 3 * i]), float(answer[4 + 3 * i]), at
            )
            for i, (_, limit) in enumerate(checks)
        ]
        return Verdict(bool(answer[0]), counts)


class MemoryCounter:
    """The same counter in this process: for the embedded default, and while Redis is away."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._windows: dict[tuple[str, int], int] = {}
        self._lock = threading.Lock()

    def check(self, checks: Sequence[tuple[str, Limit]]) -> Verdict:
        with self._lock:
            at = self._clock()
            counts = [self._hit(bucket, limit, at) for bucket, limit in checks]
            self._forget(at)
        return Verdict(all(allowed for allowed, _ in counts), [count for _, count in counts])

    def _hit(self, bucket: str, limit: Limit, at: float) -> tuple[bool, Count]:
        window = math.floor(at / limit.seconds)
        key = f"{bucket}:{limit.amount}:{limit.seconds}"
        current = self._windows.get((key, window), 0)
        previous = self._windows.get((key, window - 1), 0)
        count = Count(limit, current, previous, at / limit.seconds - window, at)
        if count.used + 1 > limit.amount:
            return False, count
        self._windows[(key, window)] = current + 1
        return True, Count(limit, current + 1, previous, count.elapsed, at)

    def _forget(self, at: float) -> None:
        if len(self._windows) < 10_000:
            return
        for key, window in list(self._windows):
            seconds = int(key.rsplit(":", 1)[1])
            if window < math.floor(at / seconds) - 1:
                del self._windows[(key, window)]
