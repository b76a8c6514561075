"""The key cache's rule: an entry is trusted only while it is at most a second older than the
later of its own read and the moment through which every change is known to have been heard."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from domain.auth import Principal
from domain.key_cache import KeyCache
from domain.model import Role

NOW = datetime(2026, 12, 1, tzinfo=UTC)
ALICE = Principal(tenant_id="ten_a", key_id="key_a", role=Role.READER)


class Clock:
    def __init__(self) -> None:
        self.at = 100.0

    def __call__(self) -> float:
        return self.at


def cached(expires_at: datetime | None = None) -> tuple[KeyCache, Clock]:
    clock = Clock()
    cache = KeyCache(clock=clock, refresh_after=30.0)
    cache.put("h", cache.ticket(), ALICE, expires_at)
    return cache, clock


def test_without_a_channel_an_entry_lasts_one_second() -> None:
    cache, clock = cached()
    clock.at += 1.0
    assert cache.get("h", NOW) == ALICE
    clock.at += 0.01
    assert cache.get("h", NOW) is None


def test_a_channel_that_keeps_hearing_keeps_entries_until_their_refresh() -> None:
    cache, clock = cached()
    for _ in range(29):
        clock.at += 1.0
        cache.heard_through(clock.at - 0.3)
        assert cache.get("h", NOW) == ALICE
    clock.at += 1.01
    cache.heard_through(clock.at)
    assert cache.get("h", NOW) is None  # read again, to write its last use


def test_a_channel_that_falls_silent_is_trusted_one_second_past_its_last_word() -> None:
    cache, clock = cached()
    clock.at += 5.0
    cache.heard_through(clock.at)
    clock.at += 0.9
    assert cache.get("h", NOW) == ALICE
    clock.at += 0.2
    assert cache.get("h", NOW) is None


def test_a_heard_change_empties_the_cache() -> None:
    cache, _ = cached()
    assert cache.get("h", NOW) == ALICE
    cache.clear()
    assert cache.get("h", NOW) is None


def test_a_read_that_a_change_overtook_is_not_kept() -> None:
    cache = KeyCache(clock=Clock())
    ticket = cache.ticket()  # the read begins, and sees the row as it was
    cache.clear()  # meanwhile the key is revoked, and that is heard
    cache.put("h", ticket, ALICE, None)
    assert cache.get("h", NOW) is None


def test_an_expired_key_is_not_served_from_the_cache() -> None:
    cache, _ = cached(expires_at=NOW + timedelta(seconds=1))
    assert cache.get("h", NOW) == ALICE
    assert cache.get("h", NOW + timedelta(seconds=1)) is None


def test_the_cache_never_holds_more_than_its_capacity() -> None:
    cache = KeyCache(clock=Clock(), capacity=3)
    for name in "abcd":
        cache.put(name, cache.ticket(), ALICE, None)
    assert sum(cache.get(name, NOW) is not None for name in "abcd") <= 3
    assert cache.get("d", NOW) == ALICE
