"""What the package's stack is made of (``conftest``): its processes, and the schedules the
schedules' tests watch, with the schedulers' counters."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import requests
from sqlalchemy import Engine, create_engine, text

from tests import services
from tests.factories import unique
from tests.stack import Process, Stack, wait_until

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
    http_workers: list[Process]
    schedulers: list[Process]
    scheduler_ports: list[int]


@dataclass
class Scheduled:
    """The schedules under watch, and what was counted when they were made."""

    running: Running
    keys: dict[str, str]
    schedules: dict[str, dict[str, Any]]
    database: Engine
    made_at: datetime  # the database's clock, once every schedule was made
    passes_then: list[float]  # each scheduler's passes then
    fired_then: list[float]  # and the schedules each had fired

    @property
    def stack(self) -> Stack:
        return self.running.stack

    @property
    def schedulers(self) -> list[Process]:
        return self.running.schedulers

    @property
    def ports(self) -> list[int]:
        return self.running.scheduler_ports

    def sql(self, statement: str, **params: Any) -> list[Any]:
        with self.database.begin() as connection:
            result = connection.execute(text(statement), params)
            return list(result) if result.returns_rows else []

    def now(self) -> datetime:
        return database_now(self.database)

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


@contextmanager
def watched_schedules(running: Running) -> Iterator[Scheduled]:
    """Every schedule of the schedules' tests, made at once once both schedulers pass; at the
    end, deleted with whatever of their jobs is unfinished, so that nothing fires or waits to
    run in the stacks of later tests."""
    for process, port in zip(running.schedulers, running.scheduler_ports, strict=True):
        wait_until(lambda port=port: passes(port) > 0, 30, "a scheduler's passes", process)
    keys = running.stack.new_tenant()
    database = create_engine(services.DATABASE_URL)
    try:
        admin = keys["admin"]
        schedules = {
            "every second": create(running.stack, admin),
            "skip": create(running.stack, admin, job=NAP, overlap="skip"),
            "catch up one": create(running.stack, admin, catch_up="one"),
            "catch up none": create(running.stack, admin, catch_up="none"),
        }
        ports = running.scheduler_ports
        yield Scheduled(
            running,
            keys,
            schedules,
            database,
            made_at=database_now(database),
            passes_then=[passes(port) for port in ports],
            fired_then=[fired_schedules(port) for port in ports],
        )
    finally:
        with database.begin() as connection:
            mine = {"t": keys["tenant_id"]}
            connection.execute(text("DELETE FROM schedules WHERE tenant_id = :t"), mine)
            connection.execute(text(CANCEL_UNFINISHED), mine)
        database.dispose()


def create(stack: Stack, key: str, **fields: Any) -> dict[str, Any]:
    body = {"name": unique("e2e"), "interval_seconds": 1, "job": ECHO, **fields}
    made = stack.request("POST", "/v1/schedules", key, json=body)
    assert made.status_code == 201, made.text
    return dict(made.json())


def database_now(database: Engine) -> datetime:
    with database.connect() as connection:
        return connection.execute(text("SELECT now()")).scalar_one()  # type: ignore[no-any-return]


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


def fired_schedules(port: int) -> float:
    return counter(port, "hopper_scheduler_actions_total", action="fired_schedules")
