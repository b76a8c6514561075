"""Firing schedules on real PostgreSQL, the service called as the scheduler calls it (no
processes): a due slot fires one job that names its schedule; two schedulers racing on one slot
make one job, whether the row lock or the slot's key settles it; overlap, catch-up, disabling
and enabling again; sealed fields carried to the job; old slots purged."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select, text

from domain.representation import rfc3339
from domain.schedules.firing import Fired
from domain.schedules.model import Schedule
from domain.schedules.repository import ScheduleRepository
from hopper.bootstrap import Container
from tests.factories import TenantKeys, unique

ECHO = {"type": "echo", "payload": {"message": "tick"}}
CANCEL_QUEUED = (
    "UPDATE jobs SET status = 'canceled', finished_at = now(), "
    'error = \'{"type": "canceled", "message": "the job was canceled"}\' '
    "WHERE tenant_id = :t AND status IN ('queued', 'running')"
)


def rows(container: Container, sql: str, **params: Any) -> list[Any]:
    with container.engine.begin() as connection:
        result = connection.execute(text(sql), params)
        return list(result) if result.returns_rows else []


def create(client: FlaskClient, tenant: TenantKeys, **fields: Any) -> dict[str, Any]:
    body = {"name": unique("firing"), "interval_seconds": 60, "job": ECHO, **fields}
    answer = client.post("/v1/schedules", json=body, headers=tenant.headers("admin"))
    assert answer.status_code == 201, answer.get_json()
    return dict(answer.get_json())


def backdate(container: Container, schedule_id: str, seconds: float) -> None:
    """Move the schedule's anchor and next slot back, as if it had been made that long ago."""
    rows(
        container,
        "UPDATE schedules SET anchor = anchor - make_interval(secs => :s), "
        "next_run_at = next_run_at - make_interval(secs => :s) WHERE id = :id",
        s=seconds,
        id=schedule_id,
    )


def stored(container: Container, schedule_id: str) -> Schedule:
    with container.uow() as uow:
        found = uow.session.get(Schedule, schedule_id)
        assert found is not None
        return found


def runs(container: Container, schedule_id: str) -> list[tuple[datetime, str | None, str]]:
    return [
        (slot, job_id, outcome)
        for slot, job_id, outcome in rows(
            container,
            "SELECT slot, job_id, outcome FROM schedule_runs WHERE schedule_id = :s ORDER BY slot",
            s=schedule_id,
        )
    ]


def jobs_of(container: Container, schedule_id: str) -> list[Any]:
    return rows(
        container,
        "SELECT id, schedule_id, payload, sealed, request_id, status FROM jobs "
        "WHERE schedule_id = :s ORDER BY id",
        s=schedule_id,
    )


def fire(container: Container) -> Fired:
    return container.schedule_firing.fire_due()


def make_due(container: Container, schedule_id: str) -> None:
    """Backdate the schedule until its next slot is just due, as if the clock had reached it:
    later than the last slot, and well within the interval of one second that makes a miss."""
    due = stored(container, schedule_id).next_run_at
    assert due is not None
    ((now,),) = rows(container, "SELECT now()")
    backdate(container, schedule_id, (due - now).total_seconds() + 0.05)


@pytest.fixture(autouse=True)
def nothing_left_to_fire(container: Container, tenant: TenantKeys) -> Iterator[None]:
    """The schedules made here are gone afterwards, and the jobs they fired canceled: no
    scheduler or worker of a later test meets them."""
    yield
    rows(container, "DELETE FROM schedules WHERE tenant_id = :t", t=tenant.tenant_id)
    rows(container, CANCEL_QUEUED, t=tenant.tenant_id)


def test_a_due_slot_fires_one_job_that_names_its_schedule(
    container: Container, client: FlaskClient, tenant: TenantKeys
) -> None:
    schedule, other = create(client, tenant), create(client, tenant)
    for made in (schedule, other):
        backdate(container, made["id"], 60)  # its first slot is its creation's second
    slot = datetime.fromisoformat(schedule["next_run_at"].replace("Z", "+00:00")) - timedelta(
        seconds=60
    )

    assert fire(container) == Fired(fired=2)
    ((job_id, schedule_id, payload, sealed, request_id, status),) = jobs_of(
        container, schedule["id"]
    )
    assert (schedule_id, payload, sealed, request_id, status) == (
        schedule["id"],
        ECHO["payload"],
        None,
        None,
        "queued",
    )
    assert runs(container, schedule["id"]) == [(slot, job_id, "fired")]
    after = client.get(f"/v1/schedules/{schedule['id']}", headers=tenant.headers("reader"))
    assert after.get_json()["last_job_id"] == job_id
    assert after.get_json()["last_run_at"] == rfc3339(slot)
    assert after.get_json()["next_run_at"] == schedule["next_run_at"]

    listed = client.get(f"/v1/jobs?schedule_id={schedule['id']}", headers=tenant.headers("reader"))
    assert [job["id"] for job in listed.get_json()["data"]] == [job_id]
    assert listed.get_json()["data"][0]["schedule_id"] == schedule["id"]
    assert fire(container) == Fired()  # its next slot is a minute away


def race(
    container: Container, due: Callable[..., Sequence[Schedule]]
) -> tuple[list[Fired], list[list[str]]]:
    """Two schedulers' passes at once: each reads the due schedules with ``due``, then waits
    for the other to have read them too, and only then fires what it read. Returns what each
    fired, and the ids each read."""
    barrier = threading.Barrier(2, timeout=10)
    read: dict[str, list[str]] = {}

    def held(repository: ScheduleRepository, now: datetime, limit: int) -> Sequence[Schedule]:
        found = due(repository, now, limit)
        read[threading.current_thread().name] = [s.id for s in found]
        barrier.wait()
        return found

    results: list[Fired] = []
    original = ScheduleRepository.due
    ScheduleRepository.due = held  # type: ignore[method-assign]
    try:
        threads = [
            threading.Thread(target=lambda: results.append(fire(container)), name=f"s{n}")
            for n in (1, 2)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(20)
    finally:
        ScheduleRepository.due = original  # type: ignore[method-assign]
    assert len(results) == 2 and set(read) == {"s1", "s2"}
    return results, list(read.values())


def test_two_schedulers_on_one_slot_make_one_job_the_lock_skipping(
    container: Container, client: FlaskClient, tenant: TenantKeys
) -> None:
    schedule = create(client, tenant)
    backdate(container, schedule["id"], 60)
    results, read = race(container, ScheduleRepository.due)
    # Both read while the slot was due: one took the row, the other skipped it, locked.
    assert sorted(schedule["id"] in ids for ids in read) == [False, True]
    assert sorted(r.fired for r in results) == [0, 1]
    assert len(jobs_of(container, schedule["id"])) == 1
    assert len(runs(container, schedule["id"])) == 1


def unlocked(repository: ScheduleRepository, now: datetime, limit: int) -> Sequence[Schedule]:
    """The due schedules read without a lock: what a scheduler would see if the lock did not
    hold, so that only the slot's key stands between two schedulers."""
    query = select(Schedule).where(Schedule.next_run_at <= now, Schedule.enabled.is_(True))
    return repository.session.scalars(query.limit(limit)).all()


def test_two_schedulers_on_one_slot_make_one_job_the_key_refusing(
    container: Container, client: FlaskClient, tenant: TenantKeys
) -> None:
    schedule = create(client, tenant)
    backdate(container, schedule["id"], 60)
    results, read = race(container, unlocked)
    assert all(schedule["id"] in ids for ids in read)  # both would fire it
    assert sorted(r.fired for r in results) == [0, 1]  # the second met the key
    ((job_id, *_),) = jobs_of(container, schedule["id"])
    ((_, fired_job, outcome),) = runs(container, schedule["id"])
    assert (fired_job, outcome) == (job_id, "fired")
    assert stored(container, schedule["id"]).last_job_id == job_id


def test_overlap_skip_waits_for_the_last_run_to_finish(
    container: Container, client: FlaskClient, tenant: TenantKeys
) -> None:
    schedule = create(client, tenant, interval_seconds=1, overlap="skip")
    outcomes = []
    for step in ("fire", "queued", "running", "finished"):
        make_due(container, schedule["id"])
        first = jobs_of(container, schedule["id"])
        if step == "running":
            assert container.execution.claim(first[0][0], "test:1") is not None
        if step == "finished":
            rows(
                container,
                "UPDATE jobs SET status = 'succeeded', finished_at = now() WHERE id = :j",
                j=first[0][0],
            )
        done = fire(container)
        outcomes.append((done.fired, done.skipped))
    assert outcomes == [(1, 0), (0, 1), (0, 1), (1, 0)]
    fired = jobs_of(container, schedule["id"])
    assert [outcome for _, _, outcome in runs(container, schedule["id"])] == [
        "fired",
        "skipped",
        "skipped",
        "fired",
    ]
    assert [job_id for _, job_id, _ in runs(container, schedule["id"])] == [
        fired[0][0],
        None,
        None,
        fired[1][0],
    ]


@pytest.mark.parametrize(("catch_up", "caught"), [("one", 1), ("none", 0)])
def test_after_downtime_catch_up_runs_the_latest_missed_slot_or_none(
    container: Container, client: FlaskClient, tenant: TenantKeys, catch_up: str, caught: int
) -> None:
    schedule = create(client, tenant, interval_seconds=3600, catch_up=catch_up)
    created = stored(container, schedule["id"])
    backdate(container, schedule["id"], 10.5 * 3600)  # ten slots, the latest half an hour ago
    assert fire(container) == Fired(fired=caught, missed=10 - caught)
    latest_missed = created.anchor - timedelta(minutes=30)
    assert [slot for slot, _, _ in runs(container, schedule["id"])] == [latest_missed][:caught]
    assert len(jobs_of(container, schedule["id"])) == caught
    assert stored(container, schedule["id"]).next_run_at == created.anchor + timedelta(minutes=30)


def test_a_disabled_schedule_never_fires(
    container: Container, client: FlaskClient, tenant: TenantKeys
) -> None:
    schedule = create(client, tenant, enabled=False)
    assert stored(container, schedule["id"]).next_run_at is None
    rows(  # even with a slot due, as a row written by hand might have it
        container,
        "UPDATE schedules SET anchor = anchor - interval '1 hour', "
        "next_run_at = anchor - interval '1 minute' WHERE id = :s",
        s=schedule["id"],
    )
    assert fire(container) == Fired()
    assert jobs_of(container, schedule["id"]) == [] and runs(container, schedule["id"]) == []


def test_enabling_again_does_not_catch_up(
    container: Container, client: FlaskClient, tenant: TenantKeys
) -> None:
    schedule = create(client, tenant, catch_up="one")
    backdate(container, schedule["id"], 600)  # ten slots have come meanwhile
    path, admin = f"/v1/schedules/{schedule['id']}", tenant.headers("admin")
    assert client.patch(path, json={"enabled": False}, headers=admin).status_code == 200
    enabled = client.patch(path, json={"enabled": True}, headers=admin).get_json()
    ((now,),) = rows(container, "SELECT now()")
    due = datetime.fromisoformat(enabled["next_run_at"].replace("Z", "+00:00"))
    assert now < due <= now + timedelta(seconds=60)
    assert fire(container) == Fired()
    assert jobs_of(container, schedule["id"]) == [] and runs(container, schedule["id"]) == []


def test_a_fired_job_carries_the_schedules_sealed_fields(
    container: Container, client: FlaskClient, tenant: TenantKeys
) -> None:
    payload = {"url": "https://example.com/hook", "secret_headers": {"X-Api-Key": "s3cr3t"}}
    schedule = create(client, tenant, job={"type": "http", "payload": payload})
    backdate(container, schedule["id"], 60)
    assert fire(container).fired == 1
    ((job_id, _, shown, sealed, _, _),) = jobs_of(container, schedule["id"])
    assert sealed is not None and sealed == stored(container, schedule["id"]).sealed
    assert shown["secret_headers"] == {"X-Api-Key": "[redacted]"}
    assert json.loads(container.box.open(sealed)) == {"secret_headers": {"X-Api-Key": "s3cr3t"}}
    rows(
        container,
        "UPDATE jobs SET status = 'canceled', finished_at = now() WHERE id = :j",
        j=job_id,
    )


def test_slots_older_than_the_jobs_retention_are_purged(
    container: Container, client: FlaskClient, tenant: TenantKeys
) -> None:
    schedule = create(client, tenant)
    for days in (31, 29):
        rows(
            container,
            "INSERT INTO schedule_runs (schedule_id, slot, outcome) "
            "VALUES (:s, now() - make_interval(days => :d), 'skipped')",
            s=schedule["id"],
            d=days,
        )
    while container.schedule_firing.purge_runs(batch=500):
        pass
    kept = runs(container, schedule["id"])
    ((now,),) = rows(container, "SELECT now()")
    assert len(kept) == 1 and now - kept[0][0] < timedelta(days=30)
