"""When a schedule's slots fall, in UTC, and which of them to fire after a pause.

Cron expressions are read by cronsim, which is small, typed, free of dependencies, marked stable
and aims to match Debian cron's five-field semantics, where croniter (still marked beta) needs
python-dateutil and stretches the syntax to a year field. The library only sees naive wall-clock
times: a slot in a spring-forward gap runs once, at the gap's end, and a wall time the clock shows
twice runs once, at its first occurrence.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

FIVE_FIELDS = "must have exactly five fields: minute hour day month weekday"
# crontab(5)'s shorthands, each as the five fields it stands for; @reboot has no slots at all.
SHORTHANDS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
CATCH_UP = ("one", "none")
ON_TIME = timedelta(seconds=60)  # the most a slot may lag and still not count as missed
COUNT_CAP = 10_000  # counting a cron's missed slots walks them, so it stops here
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)  # an interval without an anchor lines up with Unix time
_TICK = timedelta(microseconds=1)
_PROBE = datetime(2000, 1, 1)


@dataclass(frozen=True)
class Cadence:
    """How a schedule repeats: a cron in a time zone, or a fixed interval after an anchor."""

    cron: str | None
    interval_seconds: int | None
    timezone: str = "UTC"
    anchor: datetime | None = None

    def __post_init__(self) -> None:
        # Checked once here so that the functions below never meet a cadence they cannot follow.
        if (self.cron is None) == (self.interval_seconds is None):
            raise ValueError("a cadence has exactly one of cron and interval_seconds")
        problem = timezone_problem(self.timezone)
        if self.cron is not None:
            problem = problem or cron_problem(self.cron)
        elif self.interval_seconds is not None and self.interval_seconds < 1:
            problem = "interval_seconds must be at least 1"
        if self.anchor is not None and self.anchor.tzinfo is None:
            problem = problem or "anchor must be timezone-aware"
        if problem:
            raise ValueError(problem)


@dataclass(frozen=True)
class Plan:
    """What a schedule does at `now`: the slots it fires, how many it skips, when it is next due."""

    fire: list[datetime]
    missed: int
    next_pending: datetime


def cron_problem(expression: str) -> str | None:
    """Why `expression` is not a five-field cron, in words a user can act on; None if it is one."""
    text = _fields(expression)
    if text.startswith("@"):
        return f"{text} is not a schedule; use five fields or one of {', '.join(SHORTHANDS)}"
    if len(text.split()) != 5:
        return FIVE_FIELDS  # cronsim would take a sixth field as seconds
    try:
        next(CronSim(text, _PROBE))
    except CronSimError as error:
        return str(error)
    except StopIteration:
        return "never matches a date"
    return None


def timezone_problem(name: str) -> str | None:
    """Why `name` is not an IANA time zone; None if zoneinfo knows it."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):  # ValueError: a path rather than a key
        return f"unknown time zone {name!r}; use an IANA name such as Europe/Berlin"
    return None


def next_after(cadence: Cadence, instant: datetime) -> datetime:
    """The first slot strictly after `instant`, in UTC."""
    instant = _utc(instant)
    if cadence.cron is None:
        anchor, step = _interval(cadence)
        return anchor + max(1, (instant - anchor) // step + 1) * step
    return next(_cron_slots(cadence, instant, reverse=False))


def previous_before(cadence: Cadence, instant: datetime) -> datetime | None:
    """The last slot strictly before `instant`, in UTC; None if there is none."""
    instant = _utc(instant)
    if cadence.cron is None:
        anchor, step = _interval(cadence)
        k = -((anchor - instant) // step) - 1  # ceil((instant - anchor) / step) - 1
        return anchor + k * step if k >= 1 else None
    return next(_cron_slots(cadence, instant, reverse=True), None)


def plan(cadence: Cadence, pending: datetime, now: datetime, catch_up: str) -> Plan:
    """Which slots from `pending` (the first not yet handled) up to `now` to fire.

    Slots that lag `now` by no more than their gap to the next slot (and at most a minute) are
    on time and fire; older ones are missed, and catch_up "one" fires only the latest of those.
    """
    if catch_up not in CATCH_UP:
        raise ValueError(f"catch_up must be one of {', '.join(CATCH_UP)}")
    pending, now = _utc(pending), _utc(now)
    if pending > now:
        return Plan(fire=[], missed=0, next_pending=pending)
    upcoming = next_after(cadence, now)
    on_time, latest_missed = _on_time(cadence, pending, now, upcoming)
    if latest_missed is None:
        return Plan(fire=on_time, missed=0, next_pending=upcoming)
    caught = [latest_missed] if catch_up == "one" else []
    missed = _count(cadence, pending, latest_missed) - len(caught)
    missed = min(missed, COUNT_CAP) if cadence.cron is not None else missed
    return Plan(fire=caught + on_time, missed=missed, next_pending=upcoming)


def _on_time(
    cadence: Cadence, pending: datetime, now: datetime, upcoming: datetime
) -> tuple[list[datetime], datetime | None]:
    """The on-time slots, oldest first, and the latest missed one, walking back from `now`.

    Once a slot is too old so is every earlier one, so the walk stops there however long the pause.
    """
    on_time: list[datetime] = []
    later, slot = upcoming, previous_before(cadence, now + _TICK)
    while slot is not None and slot >= pending:
        if now - slot > min(later - slot, ON_TIME):
            return on_time, slot
        on_time.insert(0, slot)
        later, slot = slot, previous_before(cadence, slot)
    return on_time, None


def _count(cadence: Cadence, first: datetime, last: datetime) -> int:
    """The slots in [first, last]: by arithmetic for an interval, for cron to one past the cap."""
    if cadence.cron is None:
        anchor, step = _interval(cadence)
        low = max(1, -((anchor - first) // step))
        return max(0, (last - anchor) // step - low + 1)
    count = 0
    for slot in _cron_slots(cadence, first - _TICK, reverse=False):
        if slot > last or count > COUNT_CAP:
            break
        count += 1
    return count


def _cron_slots(cadence: Cadence, start: datetime, reverse: bool) -> Iterator[datetime]:
    """UTC slots strictly after (or before) `start`, nearest first, each once.

    Wall times map to UTC in order but not one to one (a gap's slots share its end).
    """
    zone = ZoneInfo(cadence.timezone)
    walls = CronSim(_fields(cadence.cron or ""), _start_wall(start, zone, reverse), reverse=reverse)
    previous = None
    for wall in walls:
        slot = _to_utc(wall, zone)
        if slot != previous and (slot < start if reverse else slot > start):
            yield slot
        previous = slot


def _start_wall(instant: datetime, zone: ZoneInfo, reverse: bool) -> datetime:
    """Where the library starts so that no slot on the far side of `instant` is passed.

    In the second pass of a repeated hour, later walls ran at their first pass, before `instant`,
    so going back starts past the repeat.
    """
    local = instant.astimezone(zone)
    if reverse and local.fold:
        shift = local.replace(fold=0).utcoffset() or timedelta(0)
        return (instant + shift).replace(tzinfo=None)
    return local.replace(tzinfo=None)


def _to_utc(wall: datetime, zone: ZoneInfo) -> datetime:
    """When a wall-clock slot runs: its first occurrence, or the end of the gap it falls in."""
    first = wall.replace(tzinfo=zone, fold=0)
    if _wall(first.astimezone(UTC), zone) == wall:
        return first.astimezone(UTC)
    return _gap_end(wall, zone)


def _gap_end(wall: datetime, zone: ZoneInfo) -> datetime:
    """The transition that skipped `wall`, by halving, as zoneinfo does not expose transitions."""
    offsets = (wall.replace(tzinfo=zone, fold=fold).utcoffset() or timedelta(0) for fold in (0, 1))
    before, after = sorted(offsets)
    base = (wall - after).replace(tzinfo=UTC)  # before the transition
    low, high = 0, int((after - before).total_seconds())  # base + high is after it
    while high - low > 1:
        middle = (low + high) // 2
        if _wall(base + timedelta(seconds=middle), zone) > wall:
            high = middle
        else:
            low = middle
    return base + timedelta(seconds=high)


def _wall(instant: datetime, zone: ZoneInfo) -> datetime:
    return instant.astimezone(zone).replace(tzinfo=None)


def _fields(expression: str) -> str:
    text = expression.strip()
    return SHORTHANDS.get(text.lower(), text)


def _interval(cadence: Cadence) -> tuple[datetime, timedelta]:
    anchor = _utc(cadence.anchor) if cadence.anchor is not None else EPOCH
    return anchor, timedelta(seconds=cadence.interval_seconds or 0)


def _utc(instant: datetime) -> datetime:
    if instant.tzinfo is None:
        raise ValueError("instants must be timezone-aware")
    return instant.astimezone(UTC)
