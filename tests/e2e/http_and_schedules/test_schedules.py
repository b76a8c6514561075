"""Schedules on real processes, the package's stack (conftest): gunicorn, a worker and two
schedulers over HTTP, with the database read directly for what the API does not show (each
job's slot, in ``schedule_runs``).

Every schedule was made at once as the package started (``shared.watched_schedules``): the
every-second one, the `overlap: skip` one and the two catch-up ones run side by side, so that
the file costs one outage.
"""

from __future__ import annotations

import itertools
import time
from datetime import datetime, timedelta

from tests.e2e.http_and_schedules.shared import Scheduled, fired_schedules, passes
from tests.stack import stop_all, wait_until

SECOND = timedelta(seconds=1)
WINDOW_SECONDS = 10  # what the schedules promise is shown over 10 s
OUTAGE_SECONDS = 5


def test_two_schedulers_fire_every_second_once(scheduled: Scheduled) -> None:
    began = scheduled.made_at  # the window began then, and the `http` tests may have run since
    window = WINDOW_SECONDS * SECOND
    wait_until(lambda: scheduled.now() >= began + window, 2 * WINDOW_SECONDS, "the window's end")
    ended = scheduled.now()
    scheduled.disable("every second")

    # Both schedulers ran passes all along, several a second each, so that each could take
    # every slot (which one does is a race of their phases, and either may win every time).
    assert all(process.alive() for process in scheduled.schedulers)
    seconds = (ended - began).total_seconds()
    grown = [
        passes(p) - then for p, then in zip(scheduled.ports, scheduled.passes_then, strict=True)
    ]
    assert all(count >= 2 * seconds for count in grown), (grown, seconds)
    fired = sum(map(fired_schedules, scheduled.ports)) - sum(scheduled.fired_then)

    runs = scheduled.runs("every second")
    slots = [slot for slot, _, _, _ in runs]
    assert {outcome for _, _, outcome, _ in runs} == {"fired"}
    assert slots == [slots[0] + n * SECOND for n in range(len(slots))], slots  # none missed
    first_due = datetime.fromisoformat(
        scheduled.schedules["every second"]["next_run_at"].replace("Z", "+00:00")
    )
    assert slots[0] == first_due and slots[-1] >= ended - 2 * SECOND
    assert len(slots) >= WINDOW_SECONDS and ended - began >= window
    assert fired >= len(slots)  # the schedulers say they fired them (the other schedules too)

    jobs = scheduled.jobs("every second")
    assert sorted(job["id"] for job in jobs) == sorted(job_id for _, job_id, _, _ in runs)
    assert {job["schedule_id"] for job in jobs} == {scheduled.schedules["every second"]["id"]}


def test_overlap_skip_starts_no_run_while_one_is_unfinished(scheduled: Scheduled) -> None:
    def finished_twice() -> bool:
        return sum(job["status"] == "succeeded" for job in scheduled.jobs("skip")) >= 2

    wait_until(finished_twice, 30, "two runs of the skip schedule to finish")
    scheduled.disable("skip")
    jobs = sorted(scheduled.jobs("skip"), key=lambda job: job["created_at"])
    runs = scheduled.runs("skip")
    skipped = [slot for slot, _, outcome, _ in runs if outcome == "skipped"]
    assert skipped, runs
    for previous, following in itertools.pairwise(jobs):
        assert previous["finished_at"] is not None
        began, ended = when(previous["created_at"]), when(previous["finished_at"])
        assert when(following["created_at"]) >= ended  # nothing started meanwhile
        assert when(following["created_at"]) - ended < 2 * SECOND  # and soon after it ended
        assert ended - began >= 3 * SECOND
        # the slots that came while it ran were recorded as skipped
        assert any(began < slot < ended for slot in skipped)


def when(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def test_after_an_outage_catch_up_one_runs_one_missed_slot_and_none_none(
    scheduled: Scheduled,
) -> None:
    stop_all(scheduled.schedulers)
    assert not any(process.alive() for process in scheduled.schedulers)
    stopped = scheduled.now()
    time.sleep(OUTAGE_SECONDS)
    started = scheduled.now()
    restarted = scheduled.stack.scheduler()

    def resumed() -> bool:
        return all(
            any(created is not None and created > started for *_, created in scheduled.runs(name))
            for name in ("catch up one", "catch up none")
        )

    wait_until(resumed, 30, "the restarted scheduler to fire both schedules", restarted)
    for name, caught in (("catch up one", 1), ("catch up none", 0)):
        runs = scheduled.runs(name)
        resume = min(c for *_, c in runs if c is not None and c > started)
        last_before = max(slot for slot, _, _, c in runs if c is not None and c < stopped)
        # Slots after the last one fired before the stop, and already missed when the
        # scheduler came back (older than one interval at its first pass).
        outage = []
        slot = last_before + SECOND
        while resume - slot > SECOND:
            outage.append(slot)
            slot += SECOND
        assert len(outage) >= OUTAGE_SECONDS - 1, (name, last_before, resume)
        fired = [slot for slot, job_id, _, _ in runs if job_id and slot in outage]
        assert fired == outage[-1:] if caught else fired == [], (name, fired, outage)
        scheduled.disable(name)
