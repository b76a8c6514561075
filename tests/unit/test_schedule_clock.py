"""Schedule slots in UTC across time zones and DST, and what fires after a pause:
``domain.schedules.clock``."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from itertools import pairwise, takewhile
from zoneinfo import ZoneInfo

import pytest

from domain.schedules import clock
from domain.schedules.clock import (
    COUNT_CAP,
    FIVE_FIELDS,
    Cadence,
    Plan,
    cron_problem,
    next_after,
    plan,
    previous_before,
    timezone_problem,
)

SECOND = timedelta(seconds=1)
MINUTE = timedelta(minutes=1)


def z(text: str) -> datetime:
    """A UTC instant from an ISO string without its zone."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def cron(expression: str, zone: str = "UTC") -> Cadence:
    return Cadence(cron=expression, interval_seconds=None, timezone=zone)


def every(seconds: int, anchor: datetime | None = None) -> Cadence:
    return Cadence(cron=None, interval_seconds=seconds, anchor=anchor)


def slots(cadence: Cadence, start: datetime, end: datetime) -> list[datetime]:
    """The slots in [start, end), found forwards with next_after."""
    found, slot = [], next_after(cadence, start - timedelta(microseconds=1))
    while slot < end:
        found.append(slot)
        slot = next_after(cadence, slot)
    return found


def slots_backwards(cadence: Cadence, start: datetime, end: datetime) -> list[datetime]:
    """The slots in [start, end), found backwards with previous_before, oldest first."""
    found, slot = [], previous_before(cadence, end)
    while slot is not None and slot >= start:
        found.insert(0, slot)
        slot = previous_before(cadence, slot)
    return found


BERLIN_SPRING = [z("2026-03-27T01:30"), z("2026-03-28T01:30")]
BERLIN_SPRING += [z("2026-03-29T01:00"), z("2026-03-30T00:30"), z("2026-03-31T00:30")]
BERLIN_AUTUMN = [z("2026-10-23T00:30"), z("2026-10-24T00:30"), z("2026-10-25T00:30")]
BERLIN_AUTUMN += [z("2026-10-26T01:30"), z("2026-10-27T01:30")]

DAILY_CASES = [
    # 02:30 is skipped on 29 March: it runs when the gap ends, 03:00 CEST.
    ("30 2 * * *", "Europe/Berlin", "2026-03-27", "2026-04-01", BERLIN_SPRING),
    # 02:30 happens twice on 25 October: it runs at the first, 02:30 CEST.
    ("30 2 * * *", "Europe/Berlin", "2026-10-23", "2026-10-28", BERLIN_AUTUMN),
    (
        "30 2 * * *",
        "America/New_York",
        "2026-03-07",
        "2026-03-10",
        [z("2026-03-07T07:30"), z("2026-03-08T07:00"), z("2026-03-09T06:30")],
    ),
    (
        "30 1 * * *",
        "America/New_York",
        "2026-10-31",
        "2026-11-03",
        [z("2026-10-31T05:30"), z("2026-11-01T05:30"), z("2026-11-02T06:30")],
    ),
    (
        "30 2 * * *",
        "America/New_York",
        "2026-10-31",
        "2026-11-03",
        [z("2026-10-31T06:30"), z("2026-11-01T07:30"), z("2026-11-02T07:30")],
    ),
    (
        "15 4 * * *",
        "UTC",
        "2026-03-28",
        "2026-03-31",
        [z("2026-03-28T04:15"), z("2026-03-29T04:15"), z("2026-03-30T04:15")],
    ),
]


@pytest.mark.parametrize(("expression", "zone", "start", "end", "expected"), DAILY_CASES)
def test_daily_slots_across_dst(
    expression: str, zone: str, start: str, end: str, expected: list[datetime]
) -> None:
    cadence = cron(expression, zone)
    assert slots(cadence, z(start), z(end)) == expected
    assert slots_backwards(cadence, z(start), z(end)) == expected


def test_results_are_utc_whatever_zone_the_instant_is_in() -> None:
    berlin_noon = datetime(2026, 7, 1, 12, 0, tzinfo=ZoneInfo("Europe/Berlin"))
    after = next_after(cron("0 13 * * *", "Europe/Berlin"), berlin_noon)
    assert after == z("2026-07-01T11:00")
    assert after.tzinfo is UTC


def test_naive_instants_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        next_after(cron("* * * * *"), datetime(2026, 1, 1))


def test_every_minute_through_the_spring_gap_loses_nothing() -> None:
    # 01:59 CET is 00:59Z and 03:00 CEST is 01:00Z: in UTC the minutes simply run on.
    found = slots(cron("* * * * *", "Europe/Berlin"), z("2026-03-29T00:00"), z("2026-03-29T02:00"))
    assert len(found) == 120
    assert (found[0], found[-1]) == (z("2026-03-29T00:00"), z("2026-03-29T01:59"))
    assert all(later - earlier == MINUTE for earlier, later in pairwise(found))


def test_several_gap_slots_collapse_into_one() -> None:
    cadence = cron("*/20 2 * * *", "Europe/Berlin")
    found = slots(cadence, z("2026-03-28T00:00"), z("2026-03-30T12:00"))
    assert found == [
        z("2026-03-28T01:00"),
        z("2026-03-28T01:20"),
        z("2026-03-28T01:40"),
        z("2026-03-29T01:00"),
        z("2026-03-30T00:00"),
        z("2026-03-30T00:20"),
        z("2026-03-30T00:40"),
    ]
    assert slots_backwards(cadence, z("2026-03-28T00:00"), z("2026-03-30T12:00")) == found


def test_gap_end_is_found_in_a_half_hour_shift() -> None:
    # Lord Howe Island moves from +10:30 to +11:00 at 02:00 local: 02:00 and 02:10 and 02:20
    # do not exist, and 02:30 LHDT (15:30Z) is both the gap's end and a slot of its own.
    cadence = cron("*/10 2 * * *", "Australia/Lord_Howe")
    found = slots(cadence, z("2026-10-03T12:00"), z("2026-10-03T18:00"))
    assert found == [z("2026-10-03T15:30"), z("2026-10-03T15:40"), z("2026-10-03T15:50")]


def test_every_minute_through_the_repeated_hour_fires_each_wall_minute_once() -> None:
    cadence = cron("* * * * *", "Europe/Berlin")
    found = slots(cadence, z("2026-10-24T23:00"), z("2026-10-25T03:00"))
    # 01:00-01:59 CEST, 02:00-02:59 CEST (first pass), 03:00-03:59 CET: the second pass is quiet.
    assert len(found) == 180
    assert len(set(found)) == 180
    assert (found[0], found[-1]) == (z("2026-10-24T23:00"), z("2026-10-25T02:59"))
    assert all(earlier < later for earlier, later in pairwise(found))
    assert [s for s in found if z("2026-10-25T00:59") < s < z("2026-10-25T02:00")] == []
    assert found[found.index(z("2026-10-25T00:59")) + 1] == z("2026-10-25T02:00")


def test_from_inside_the_repeated_hour() -> None:
    second_pass = z("2026-10-25T01:30")  # 02:30 CET, the wall clock's second 02:30
    minutes = cron("* * * * *", "Europe/Berlin")
    assert next_after(minutes, second_pass) == z("2026-10-25T02:00")
    assert previous_before(minutes, second_pass) == z("2026-10-25T00:59")
    daily = cron("30 2 * * *", "Europe/Berlin")
    assert next_after(daily, second_pass) == z("2026-10-26T01:30")
    assert previous_before(daily, second_pass) == z("2026-10-25T00:30")
    assert next_after(daily, z("2026-10-25T00:30")) == z("2026-10-26T01:30")


def test_at_the_end_of_the_spring_gap() -> None:
    gap_end = z("2026-03-29T01:00")
    minutes = cron("* * * * *", "Europe/Berlin")
    assert next_after(minutes, gap_end) == z("2026-03-29T01:01")
    assert previous_before(minutes, gap_end) == z("2026-03-29T00:59")
    daily = cron("30 2 * * *", "Europe/Berlin")
    assert previous_before(daily, gap_end) == z("2026-03-28T01:30")
    assert previous_before(daily, gap_end + SECOND) == gap_end


def test_interval_slots_follow_the_anchor() -> None:
    anchor = z("2026-01-01T00:00:00.250000")
    cadence = every(90, anchor)
    assert next_after(cadence, anchor) == anchor + 90 * SECOND
    assert next_after(cadence, anchor - timedelta(days=1)) == anchor + 90 * SECOND
    assert next_after(cadence, anchor + 90 * SECOND) == anchor + 180 * SECOND
    assert next_after(cadence, anchor + 100 * SECOND) == anchor + 180 * SECOND
    assert previous_before(cadence, anchor + 90 * SECOND) is None
    assert previous_before(cadence, anchor + timedelta(seconds=90, microseconds=1)) == (
        anchor + 90 * SECOND
    )
    assert previous_before(cadence, anchor + 1000 * SECOND) == anchor + 990 * SECOND


def test_interval_without_anchor_lines_up_with_unix_time() -> None:
    hourly = every(3600)
    assert next_after(hourly, z("2026-05-05T10:20")) == z("2026-05-05T11:00")
    assert previous_before(hourly, z("2026-05-05T10:20")) == z("2026-05-05T10:00")


def test_interval_anchor_in_another_zone_counts_as_its_instant() -> None:
    anchor = datetime(2026, 1, 1, 1, 0, tzinfo=ZoneInfo("Europe/Berlin"))
    assert next_after(every(60, anchor), z("2026-01-01T00:00")) == z("2026-01-01T00:01")


def scanned(expression: str, zone: str, start: datetime, end: datetime) -> list[datetime]:
    """The slots in [start, end) by brute force: each matching wall time runs at the first UTC
    minute whose wall clock has reached it, which is its first occurrence or its gap's end."""
    tz, minutes = ZoneInfo(zone), [start - timedelta(hours=6) + n * MINUTE for n in range(4320)]
    walls = [m.astimezone(tz).replace(tzinfo=None) for m in minutes]
    last = max(walls)
    matches = takewhile(lambda w: w <= last, clock.CronSim(expression, walls[0] - MINUTE))
    found, reached = set(), 0
    for wall in matches:
        while walls[reached] < wall:
            reached += 1
        found.add(minutes[reached])
    return sorted(s for s in found if start <= s < end)


@pytest.mark.parametrize(
    ("zone", "day"),
    [
        ("Europe/Berlin", "2026-03-29"),
        ("Europe/Berlin", "2026-10-25"),
        ("America/New_York", "2026-11-01"),
        ("Australia/Lord_Howe", "2026-10-04"),
        ("Antarctica/Troll", "2026-03-29"),
    ],
)
@pytest.mark.parametrize("expression", ["* * * * *", "*/7 1-3 * * *", "0,59 1-3 * * *"])
def test_slots_match_a_scan_of_every_minute(expression: str, zone: str, day: str) -> None:
    start, end = z(day) - timedelta(hours=12), z(day) + timedelta(hours=12)
    expected = scanned(expression, zone, start, end)
    assert expected
    assert slots(cron(expression, zone), start, end) == expected
    assert slots_backwards(cron(expression, zone), start, end) == expected


PROPERTY_CADENCES = [
    cron("* * * * *", "Europe/Berlin"),
    cron("30 2 * * *", "Europe/Berlin"),
    cron("0 */3 * * 1-5", "America/New_York"),
    cron("*/10 2 * * *", "Australia/Lord_Howe"),
    cron("15 10 L * *", "UTC"),
    every(7, z("2025-02-03T04:05:06")),
]


@pytest.mark.parametrize("cadence", PROPERTY_CADENCES, ids=lambda c: c.cron or "interval")
def test_next_and_previous_bracket_random_instants(cadence: Cadence) -> None:
    rng = random.Random(20260329)
    # Half the instants land on the days the clocks change, where mistakes would hide.
    change_days = [z(d) for d in ("2026-03-08", "2026-03-29", "2026-10-04", "2026-10-25")]
    change_days += [z("2026-11-01")]
    for _ in range(150):
        day = rng.choice(change_days) if rng.random() < 0.5 else z("2026-01-01")
        offset = rng.randrange(0, 86_400 * (2 if day != z("2026-01-01") else 365))
        instant = day + timedelta(seconds=offset, microseconds=rng.randrange(1, 1_000_000))
        before, after = previous_before(cadence, instant), next_after(cadence, instant)
        assert before is not None
        assert before < instant < after
        assert next_after(cadence, before) == after
        assert previous_before(cadence, after) == before


@pytest.mark.parametrize(
    ("expression", "problem"),
    [
        ("* * * *", FIVE_FIELDS),
        ("0 * * * * *", FIVE_FIELDS),
        ("0 0 12 * * ? 2026", FIVE_FIELDS),
        ("", FIVE_FIELDS),
        ("61 * * * *", "Bad minute"),
        ("0 24 * * *", "Bad hour"),
        ("0 0 30 2 *", "Bad day-of-month"),
        ("0 0 * 13 *", "Bad month"),
        ("0 0 * * 8", "Bad day-of-week"),
        ("*/0 * * * *", "Bad minute"),
    ],
)
def test_cron_problem_names_what_is_wrong(expression: str, problem: str) -> None:
    assert cron_problem(expression) == problem


@pytest.mark.parametrize("expression", ["@reboot", "@fortnightly"])
def test_shorthands_without_five_fields_are_refused(expression: str) -> None:
    problem = cron_problem(expression)
    assert problem is not None
    assert problem.startswith(f"{expression} is not a schedule")
    assert "@hourly" in problem


@pytest.mark.parametrize(
    "expression", ["*/5 9-17 * * MON-FRI", "0 0 1 jan *", "  0 12 * * 0  ", "@daily", "@HOURLY"]
)
def test_cron_problem_accepts_five_fields_and_shorthands(expression: str) -> None:
    assert cron_problem(expression) is None


def test_shorthands_mean_their_five_fields() -> None:
    assert next_after(cron("@daily"), z("2026-05-05T10:20")) == z("2026-05-06T00:00")
    assert next_after(cron("@hourly"), z("2026-05-05T10:20")) == z("2026-05-05T11:00")
    assert next_after(cron("@weekly"), z("2026-05-05T10:20")) == z("2026-05-10T00:00")


@pytest.mark.parametrize("name", ["Mars/Olympus", "Europe", "", "../etc/passwd", "/etc/localtime"])
def test_timezone_problem_refuses_what_is_not_a_zone(name: str) -> None:
    assert timezone_problem(name) == (
        f"unknown time zone {name!r}; use an IANA name such as Europe/Berlin"
    )


@pytest.mark.parametrize("name", ["UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata"])
def test_timezone_problem_accepts_iana_names(name: str) -> None:
    assert timezone_problem(name) is None


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"cron": "* * * * *", "interval_seconds": 5}, "exactly one"),
        ({"cron": None, "interval_seconds": None}, "exactly one"),
        ({"cron": None, "interval_seconds": 0}, "at least 1"),
        ({"cron": "61 * * * *", "interval_seconds": None}, "Bad minute"),
        ({"cron": "* * * * *", "interval_seconds": None, "timezone": "Mars/Olympus"}, "Mars"),
        ({"cron": None, "interval_seconds": 5, "anchor": datetime(2026, 1, 1)}, "aware"),
    ],
)
def test_a_cadence_that_cannot_be_followed_is_refused(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Cadence(**kwargs)


def test_plan_fires_nothing_before_the_pending_slot() -> None:
    pending = z("2026-06-01T10:00")
    result = plan(cron("0 * * * *"), pending, pending - SECOND, "one")
    assert result == Plan(fire=[], missed=0, next_pending=pending)


def test_plan_fires_a_slot_half_a_second_late() -> None:
    pending = z("2026-06-01T10:00")
    result = plan(cron("* * * * *"), pending, pending + SECOND / 2, "none")
    assert result == Plan(fire=[pending], missed=0, next_pending=z("2026-06-01T10:01"))
    result = plan(every(1, pending - SECOND), pending, pending + SECOND / 2, "none")
    assert result == Plan(fire=[pending], missed=0, next_pending=pending + SECOND)


ANCHOR = z("2026-05-01T12:00")


def test_plan_after_five_seconds_down_catches_up_once() -> None:
    result = plan(every(1, ANCHOR), ANCHOR + SECOND, ANCHOR + 6.5 * SECOND, "one")
    # Slots +1 s to +5 s are missed; +5 s fires as the catch-up, +6 s fires on time.
    expected_fire = [ANCHOR + 5 * SECOND, ANCHOR + 6 * SECOND]
    assert result == Plan(fire=expected_fire, missed=4, next_pending=ANCHOR + 7 * SECOND)


def test_plan_after_five_seconds_down_without_catch_up() -> None:
    result = plan(every(1, ANCHOR), ANCHOR + SECOND, ANCHOR + 6.5 * SECOND, "none")
    assert result == Plan(fire=[ANCHOR + 6 * SECOND], missed=5, next_pending=ANCHOR + 7 * SECOND)


def test_plan_on_a_slot_boundary_fires_the_slot_a_gap_old_too() -> None:
    # now is exactly +6 s: +5 s is one interval old, which still counts as on time.
    result = plan(every(1, ANCHOR), ANCHOR + SECOND, ANCHOR + 6 * SECOND, "one")
    fire = [ANCHOR + 4 * SECOND, ANCHOR + 5 * SECOND, ANCHOR + 6 * SECOND]
    assert result == Plan(fire=fire, missed=3, next_pending=ANCHOR + 7 * SECOND)


def test_plan_after_three_days_down_catches_up_the_latest_day() -> None:
    daily, pending, now = cron("0 3 * * *"), z("2026-06-01T03:00"), z("2026-06-03T12:00")
    assert plan(daily, pending, now, "one") == Plan(
        fire=[z("2026-06-03T03:00")], missed=2, next_pending=z("2026-06-04T03:00")
    )
    assert plan(daily, pending, now, "none") == Plan(
        fire=[], missed=3, next_pending=z("2026-06-04T03:00")
    )


@pytest.mark.parametrize(("late", "fire", "missed"), [(59, True, 0), (60, True, 0), (61, False, 1)])
def test_plan_counts_up_to_a_minute_late_as_on_time(late: int, fire: bool, missed: int) -> None:
    pending = z("2026-06-01T03:00")
    result = plan(cron("0 3 * * *"), pending, pending + late * SECOND, "none")
    assert result == Plan(
        fire=[pending] if fire else [], missed=missed, next_pending=z("2026-06-02T03:00")
    )


def test_plan_through_the_repeated_hour_fires_nothing_twice() -> None:
    minutes = cron("* * * * *", "Europe/Berlin")
    pending, now = z("2026-10-25T00:59"), z("2026-10-25T02:00:30")
    # 02:59 CEST is 61 minutes before 03:00 CET, so it is missed, not on time.
    assert plan(minutes, pending, now, "one") == Plan(
        fire=[pending, z("2026-10-25T02:00")], missed=0, next_pending=z("2026-10-25T02:01")
    )


def test_plan_an_every_second_schedule_down_a_year(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_cron(*args: object, **kwargs: object) -> None:
        raise AssertionError("an interval plan must not iterate")

    monkeypatch.setattr(clock, "CronSim", no_cron)
    pending = ANCHOR + SECOND
    last = pending + timedelta(days=365)
    now = last + SECOND / 4
    year = 365 * 86_400
    assert plan(every(1, ANCHOR), pending, now, "one") == Plan(
        fire=[last - SECOND, last], missed=year - 1, next_pending=last + SECOND
    )
    assert plan(every(1, ANCHOR), pending, now, "none") == Plan(
        fire=[last], missed=year, next_pending=last + SECOND
    )


def test_plan_a_cron_down_a_month_stops_counting_at_the_cap(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    steps = 0

    class Counted(clock.CronSim):
        def __next__(self) -> datetime:
            nonlocal steps
            steps += 1
            return super().__next__()

    monkeypatch.setattr(clock, "CronSim", Counted)
    pending, now = z("2026-06-01T00:00"), z("2026-07-01T00:00:10")
    result = plan(cron("* * * * *", "Europe/Berlin"), pending, now, "one")
    assert result == Plan(
        fire=[z("2026-06-30T23:59"), z("2026-07-01T00:00")],
        missed=COUNT_CAP,
        next_pending=z("2026-07-01T00:01"),
    )
    # 43 201 slots passed; the count stops just past the cap instead of walking them all.
    assert COUNT_CAP < steps < COUNT_CAP + 20


def test_plan_refuses_an_unknown_catch_up() -> None:
    with pytest.raises(ValueError, match="catch_up"):
        plan(every(1, ANCHOR), ANCHOR, ANCHOR, "all")
