"""Schedules on real processes: gunicorn, a worker and two schedulers over HTTP, with the
database read directly for what the API does not show (each job's slot, in ``schedule_runs``).

One stack for the module, and every schedule made at once, once both schedulers pass: the
every-second one, the `overlap: skip` one and the two catch-up ones run side by side, so that
the file costs one stack and one outage.
"""

from __future__ import annotations

import itertools
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest
import requests
from sqlalchemy import Engine, create_engine, text

from tests import services
from tests.factories import unique
from tests.stack import Process, Stack, free_port, stop_all, wait_until

SECOND = timedelta(seconds=1)
WINDOW_SECONDS = 10  # what the schedules promise is shown over 10 s
OUTAGE_SECONDS = 5
ECHO = {"type": "echo", "payload": {"message": "tick"}}
NAP = {"type": "sleep", "payload": {"seconds": 3}}
CANCEL_UNFINISHED = (
    "UPDATE jobs SET status = 'canceled', finished_at = now(), "
    'error = \'{"type": "canceled", "message": "the job was canceled"}\' '
    "WHERE tenant_id = :t AND status IN ('queued', 'running')"
)


@dataclass
class Running:
    stack: Stack
    keys: dict[str, str]
    schedulers: list[Process]
    ports: list[int]
    schedules: dict[str, dict[str, Any]]
    database: Engine

    def sql(self, statement: str, **params: Any) -> list[Any]:
        with self.database.begin() as connection:
            result = connection.execute(text(statement), params)
            return list(result) if result.returns_rows else []

    def now(self) -> datetime:
        ((now,),) = self.sql("SELECT now()")
        return now  # type: ignore[no-any-return]

    def runs(self, name: str) -> list[tuple[datetime, str | None, str, datetime | None]]:
        """(slot, job id, outcome, the job's created_at) of a schedule's handled slots."""
        return [
            tuple(row)  # type: ignore[misc]
            for row in self.sql(
                "SELECT r.slot, r.job_id, r.outcome, j.created_at FROM schedule_runs r "
                "LEFT JOIN jobs j ON j.id = r.job_id WHERE r.schedule_id = :s ORDER BY r.slot",
                s=self.schedules[name]["id"],
            )
        ]

    def jobs(self, name: str) -> list[dict[str, Any]]:
        """The schedule's jobs, as `GET /v1/jobs?schedule_id=` lists them (all pages)."""
        found: list[dict[str, Any]] = []
        params: dict[str, Any] = {"schedule_id": self.schedules[name]["id"], "limit": 100}
        while True:
            page = self.stack.request("GET", "/v1/jobs", self.keys["reader"], params=params)
            assert page.status_code == 200, page.text
            found += page.json()["data"]
            if not page.json()["next_cursor"]:
                return found
            params["cursor"] = page.json()["next_cursor"]

    def disable(self, name: str) -> None:
        path = f"/v1/schedules/{self.schedules[name]['id']}"
        changed = self.stack.request("PATCH", path, self.keys["admin"], json={"enabled": False})
        assert changed.status_code == 200, changed.text


def counter(port: int, name: str, **labels: str) -> float:
    """A counter of a scheduler's `/metrics`, 0 before its first count."""
    body = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    wanted = ",".join(f'{key}="{value}"' for key, value in labels.items())
    found = re.search(rf"^{name}\{{{wanted}\}} (\S+)$", body, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


def passes(port: int) -> float:
    try:
        return counter(port, "hopper_scheduler_passes_total", result="ok")
    except requests.RequestException:
        return 0.0


def create(stack: Stack, key: str, **fields: Any) -> dict[str, Any]:
    body = {"name": unique("e2e"), "interval_seconds": 1, "job": ECHO, **fields}
    made = stack.request("POST", "/v1/schedules", key, json=body)
    assert made.status_code == 201, made.text
    return dict(made.json())


@pytest.fixture(scope="module")
def running(migrated_database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    stack = Stack(services.real_env(), tmp_path_factory.mktemp("schedules"))
    database = create_engine(services.DATABASE_URL)
    keys: dict[str, str] = {}
    try:
        stack.web()
        stack.worker()
        ports = [free_port(), free_port()]
        schedulers = [stack.scheduler(env={"HOPPER_METRICS_PORT": str(p)}) for p in ports]
        keys = stack.new_tenant()
        for process, port in zip(schedulers, ports, strict=True):
            wait_until(lambda port=port: passes(port) > 0, 30, "a scheduler's passes", process)
        admin = keys["admin"]
        schedules = {
            "every second": create(stack, admin),
            "skip": create(stack, admin, job=NAP, overlap="skip"),
            "catch up one": create(stack, admin, catch_up="one"),
            "catch up none": create(stack, admin, catch_up="none"),
        }
        yield Running(stack, keys, schedulers, ports, schedules, database)
    finally:
        stack.stop()
        if keys:  # nothing of this module fires, or waits to run, in the stacks of later ones
            with database.begin() as connection:
                mine = {"t": keys["tenant_id"]}
                connection.execute(text("DELETE FROM schedules WHERE tenant_id = :t"), mine)
                connection.execute(text(CANCEL_UNFINISHED), mine)
        database.dispose()


def test_two_schedulers_fire_every_second_once(running: Running) -> None:
    before = [passes(port) for port in running.ports]
    fired_before = [
        counter(port, "hopper_scheduler_actions_total", action="fired_schedules")
        for port in running.ports
    ]
    began = running.now()
    time.sleep(WINDOW_SECONDS)
    ended = running.now()
    running.disable("every second")

    # Both schedulers ran passes all along, several a second each, so that each could take
    # every slot (which one does is a race of their phases, and either may win every time).
    assert all(process.alive() for process in running.schedulers)
    grown = [passes(port) - seen for port, seen in zip(running.ports, before, strict=True)]
    assert all(count >= 2 * WINDOW_SECONDS for count in grown), grown
    fired = sum(
        counter(port, "hopper_scheduler_actions_total", action="fired_schedules")
        for port in running.ports
    ) - sum(fired_before)

    runs = running.runs("every second")
    slots = [slot for slot, _, _, _ in runs]
    assert {outcome for _, _, outcome, _ in runs} == {"fired"}
    assert slots == [slots[0] + n * SECOND for n in range(len(slots))], slots  # none missed
    first_due = datetime.fromisoformat(
        running.schedules["every second"]["next_run_at"].replace("Z", "+00:00")
    )
    assert slots[0] == first_due and slots[-1] >= ended - 2 * SECOND
    assert len(slots) >= WINDOW_SECONDS and began < ended
    assert fired >= WINDOW_SECONDS  # the schedulers say they fired them (the other schedules too)

    jobs = running.jobs("every second")
    assert sorted(job["id"] for job in jobs) == sorted(job_id for _, job_id, _, _ in runs)
    assert {job["schedule_id"] for job in jobs} == {running.schedules["every second"]["id"]}


def test_overlap_skip_starts_no_run_while_one_is_unfinished(running: Running) -> None:
    def finished_twice() -> bool:
        return sum(job["status"] == "succeeded" for job in running.jobs("skip")) >= 2

    wait_until(finished_twice, 30, "two runs of the skip schedule to finish")
    running.disable("skip")
    jobs = sorted(running.jobs("skip"), key=lambda job: job["created_at"])
    runs = running.runs("skip")
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
    running: Running,
) -> None:
    stop_all(running.schedulers)
    assert not any(process.alive() for process in running.schedulers)
    stopped = running.now()
    time.sleep(OUTAGE_SECONDS)
    started = running.now()
    restarted = running.stack.scheduler()

    def resumed() -> bool:
        return all(
            any(created is not None and created > started for *_, created in running.runs(name))
            for name in ("catch up one", "catch up none")
        )

    wait_until(resumed, 30, "the restarted scheduler to fire both schedules", restarted)
    for name, caught in (("catch up one", 1), ("catch up none", 0)):
        runs = running.runs(name)
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
        running.disable(name)
