"""The schedules API in-process on real PostgreSQL: the round trip and its representation, roles,
every refusal (and nothing written by one), names, the per-tenant limit, tenancy, audit, and a
job's secret fields sealed at rest in the schedule (and re-encrypted with the other secrets)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import text

from domain.schedules.model import MAX_SCHEDULES
from domain.secrets import generate_key
from domain.settings import Settings
from hopper.bootstrap import Container, bootstrap
from hopper.reencrypt import reencrypt_secrets
from tests.factories import TenantKeys, unique
from tests.services import TEST_ENCRYPTION_KEY, real_env

ECHO = {"type": "echo", "payload": {"message": "tick"}}
FIELDS = {
    "id",
    "name",
    "cron",
    "interval_seconds",
    "timezone",
    "job",
    "enabled",
    "overlap",
    "catch_up",
    "next_run_at",
    "last_run_at",
    "last_job_id",
    "created_at",
}
SECRET_VALUE = "schedule-secret-value-7f3a"


def rows(container: Container, sql: str, **params: Any) -> list[Any]:
    with container.engine.begin() as connection:
        result = connection.execute(text(sql), params)
        return list(result) if result.returns_rows else []


def count(container: Container, tenant: TenantKeys) -> int:
    sql = "SELECT count(*) FROM schedules WHERE tenant_id = :t"
    return int(rows(container, sql, t=tenant.tenant_id)[0][0])


def body(**fields: Any) -> dict[str, Any]:
    return {"name": unique("schedule"), "interval_seconds": 3600, "job": ECHO, **fields}


def create(client: FlaskClient, tenant: TenantKeys, role: str = "admin", **fields: Any) -> Any:
    return client.post("/v1/schedules", json=body(**fields), headers=tenant.headers(role))


def when(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


@pytest.fixture(autouse=True)
def nothing_left_to_fire(container: Container, tenant: TenantKeys) -> Iterator[None]:
    """The schedules made here are gone afterwards: no scheduler of a later test fires them."""
    yield
    rows(container, "DELETE FROM schedules WHERE tenant_id = :t", t=tenant.tenant_id)


def test_create_get_list_patch_delete(client: FlaskClient, tenant: TenantKeys) -> None:
    admin = tenant.headers("admin")
    made = create(client, tenant, name="nightly report")
    assert made.status_code == 201, made.get_json()
    schedule = made.get_json()
    assert made.headers["Location"].endswith(f"/v1/schedules/{schedule['id']}")
    assert set(schedule) == FIELDS and schedule["id"].startswith("sch_")
    assert schedule["job"] == {
        "type": "echo",
        "payload": {"message": "tick"},
        "priority": "normal",
        "max_attempts": None,
        "timeout_seconds": None,
        "metadata": {},
    }
    assert (schedule["cron"], schedule["interval_seconds"]) == (None, 3600)
    assert (schedule["timezone"], schedule["enabled"]) == ("UTC", True)
    assert (schedule["overlap"], schedule["catch_up"]) == ("allow", "one")
    assert (schedule["last_run_at"], schedule["last_job_id"]) == (None, None)
    anchor = when(schedule["created_at"]).replace(microsecond=0)
    assert when(schedule["next_run_at"]) == anchor + timedelta(hours=1)

    path = f"/v1/schedules/{schedule['id']}"
    assert client.get(path, headers=admin).get_json() == schedule
    newer = create(client, tenant).get_json()
    page = client.get("/v1/schedules?limit=1", headers=admin)
    assert [s["id"] for s in page.get_json()["data"]] == [newer["id"]]
    assert page.get_json()["next_cursor"] and 'rel="next"' in page.headers["Link"]
    rest = client.get(
        f"/v1/schedules?limit=1&cursor={page.get_json()['next_cursor']}", headers=admin
    )
    assert [s["id"] for s in rest.get_json()["data"]] == [schedule["id"]]

    changed = client.patch(path, json={"name": "hourly", "cron": "0 * * * *"}, headers=admin)
    assert changed.status_code == 200, changed.get_json()
    patched = changed.get_json()
    assert (patched["name"], patched["cron"], patched["interval_seconds"]) == (
        "hourly",
        "0 * * * *",
        None,
    )
    due = when(patched["next_run_at"])
    assert (due.minute, due.second, due.microsecond) == (0, 0, 0)
    assert timedelta(0) < due - datetime.now(due.tzinfo) <= timedelta(hours=1, seconds=5)

    assert client.delete(path, headers=admin).status_code == 204
    assert client.get(path, headers=admin).status_code == 404
    listed = client.get("/v1/schedules?limit=100", headers=admin).get_json()["data"]
    assert [s["id"] for s in listed] == [newer["id"]]


def test_disabling_clears_next_run_at_and_enabling_sets_it_from_now(
    client: FlaskClient, tenant: TenantKeys
) -> None:
    admin = tenant.headers("admin")
    schedule = create(client, tenant, enabled=False, interval_seconds=60).get_json()
    assert schedule["next_run_at"] is None
    path = f"/v1/schedules/{schedule['id']}"
    enabled = client.patch(path, json={"enabled": True}, headers=admin).get_json()
    anchor = when(schedule["created_at"]).replace(microsecond=0)
    due = when(enabled["next_run_at"])
    assert (due - anchor).total_seconds() % 60 == 0  # the anchor stays: no new cadence
    assert timedelta(0) < due - datetime.now(due.tzinfo) <= timedelta(seconds=61)
    assert (
        client.patch(path, json={"enabled": False}, headers=admin).get_json()["next_run_at"] is None
    )


@pytest.mark.parametrize(
    ("role", "allowed"), [("reader", False), ("submitter", False), ("admin", True)]
)
def test_readers_read_and_only_admins_change(
    client: FlaskClient, tenant: TenantKeys, role: str, allowed: bool
) -> None:
    schedule = create(client, tenant).get_json()
    path, headers = f"/v1/schedules/{schedule['id']}", tenant.headers(role)
    assert client.get(path, headers=headers).status_code == 200
    assert client.get("/v1/schedules", headers=headers).status_code == 200
    expected = (201, 200, 204) if allowed else (403, 403, 403)
    answers = (
        create(client, tenant, role=role).status_code,
        client.patch(path, json={"enabled": False}, headers=headers).status_code,
        client.delete(path, headers=headers).status_code,
    )
    assert answers == expected
    after = client.get(path, headers=tenant.headers("admin"))
    if allowed:
        assert after.status_code == 404
    else:
        assert after.get_json() == schedule  # nothing the refused requests asked for happened


INVALID: dict[str, tuple[dict[str, Any], set[str]]] = {
    "no cadence": ({"interval_seconds": None}, {"cron", "interval_seconds"}),
    "both cadences": ({"cron": "* * * * *"}, {"cron", "interval_seconds"}),
    "a four-field cron": ({"cron": "* * * *", "interval_seconds": None}, {"cron"}),
    "minute 61": ({"cron": "61 * * * *", "interval_seconds": None}, {"cron"}),
    "a range backwards": ({"cron": "5-1 * * * *", "interval_seconds": None}, {"cron"}),
    "a day no month has": ({"cron": "0 0 31 2 *", "interval_seconds": None}, {"cron"}),
    "interval 0": ({"interval_seconds": 0}, {"interval_seconds"}),
    "interval over a year": ({"interval_seconds": 31_536_001}, {"interval_seconds"}),
    "interval as text": ({"interval_seconds": "60"}, {"interval_seconds"}),
    "an unknown time zone": ({"timezone": "Mars/Olympus_Mons"}, {"timezone"}),
    "overlap": ({"overlap": "sometimes"}, {"overlap"}),
    "catch_up": ({"catch_up": "all"}, {"catch_up"}),
    "enabled as text": ({"enabled": "yes"}, {"enabled"}),
    "no name": ({"name": ""}, {"name"}),
    "an unknown field": ({"colour": "blue"}, {"colour"}),
    "no job": ({"job": None}, {"job"}),
    "an unknown job type": ({"job": {"type": "teleport"}}, {"job.type"}),
    "a bad payload": (
        {"job": {"type": "echo", "payload": {"message": 5}}},
        {"job.payload.message"},
    ),
    "run_at": ({"job": {**ECHO, "run_at": "2030-01-01T00:00:00Z"}}, {"job.run_at"}),
    "a bad job field": ({"job": {**ECHO, "max_attempts": 99}}, {"job.max_attempts"}),
}


@pytest.mark.parametrize(("fields", "paths"), INVALID.values(), ids=list(INVALID))
def test_each_invalid_body_is_a_422_naming_its_fields_and_writes_nothing(
    container: Container,
    client: FlaskClient,
    tenant: TenantKeys,
    fields: dict[str, Any],
    paths: set[str],
) -> None:
    sent = {k: v for k, v in body(**fields).items() if v is not None}
    answer = client.post("/v1/schedules", json=sent, headers=tenant.headers("admin"))
    assert answer.status_code == 422, answer.get_json()
    assert answer.mimetype == "application/problem+json"
    assert {error["field"] for error in answer.get_json()["errors"]} == paths
    assert count(container, tenant) == 0


def test_run_at_is_refused_with_its_reason(client: FlaskClient, tenant: TenantKeys) -> None:
    answer = create(client, tenant, job={**ECHO, "run_at": None})
    ((error,),) = [answer.get_json()["errors"]]
    assert error["field"] == "job.run_at" and "schedule sets when" in error["message"]


def test_a_patch_is_checked_as_a_creation(
    container: Container, client: FlaskClient, tenant: TenantKeys
) -> None:
    schedule = create(client, tenant).get_json()
    path, admin = f"/v1/schedules/{schedule['id']}", tenant.headers("admin")
    for change, field in (
        ({"cron": "* * * *"}, "cron"),
        ({"cron": "* * * * *", "interval_seconds": 60}, "interval_seconds"),
        ({"timezone": "Nowhere/Else"}, "timezone"),
        ({"job": {"type": "echo", "payload": {}}}, "job.payload.message"),
    ):
        answer = client.patch(path, json=change, headers=admin)
        assert answer.status_code == 422, answer.get_json()
        assert field in {error["field"] for error in answer.get_json()["errors"]}
    assert client.get(path, headers=admin).get_json() == schedule
    assert audit_actions(container, tenant) == ["schedule.create"]


def test_a_name_is_unique_in_its_tenant(
    container: Container, client: FlaskClient, tenant: TenantKeys, other_tenant: TenantKeys
) -> None:
    assert create(client, tenant, name="daily").status_code == 201
    again = create(client, tenant, name="daily", interval_seconds=60)
    assert again.status_code == 409
    assert again.mimetype == "application/problem+json"
    assert "'daily'" in again.get_json()["detail"] and "unique" in again.get_json()["detail"]
    assert count(container, tenant) == 1
    assert create(client, other_tenant, name="daily").status_code == 201  # another tenant's
    other = create(client, tenant, name="weekly").get_json()
    renamed = client.patch(
        f"/v1/schedules/{other['id']}", json={"name": "daily"}, headers=tenant.headers("admin")
    )
    assert renamed.status_code == 409
    document = client.get("/openapi.json").get_json()
    assert "409" in document["paths"]["/v1/schedules/{schedule_id}"]["patch"]["responses"]
    assert audit_actions(container, tenant) == ["schedule.create", "schedule.create"]
    rows(container, "DELETE FROM schedules WHERE tenant_id = :t", t=other_tenant.tenant_id)


def test_a_tenant_has_at_most_1000_schedules(
    container: Container, client: FlaskClient, tenant: TenantKeys
) -> None:
    rows(
        container,
        "INSERT INTO schedules (id, tenant_id, name, interval_seconds, timezone, anchor, job, "
        "enabled, overlap, catch_up, created_at, updated_at) "
        "SELECT 'sch_' || substr(md5(:t || i::text), 1, 26), :t, 'filler ' || i, 3600, 'UTC', "
        "now(), CAST(:job AS jsonb), false, 'allow', 'one', now(), now() "
        "FROM generate_series(1, :n) AS i",
        t=tenant.tenant_id,
        job=json.dumps(ECHO),
        n=MAX_SCHEDULES - 1,
    )
    assert count(container, tenant) == MAX_SCHEDULES - 1
    assert create(client, tenant).status_code == 201
    assert count(container, tenant) == MAX_SCHEDULES
    over = create(client, tenant)
    assert over.status_code == 409, over.get_json()
    assert "1,000" in over.get_json()["detail"]
    assert count(container, tenant) == MAX_SCHEDULES


def test_another_tenants_schedule_is_not_found(
    client: FlaskClient, tenant: TenantKeys, other_tenant: TenantKeys
) -> None:
    schedule = create(client, tenant).get_json()
    theirs = other_tenant.headers("admin")
    for path in (f"/v1/schedules/{schedule['id']}", "/v1/schedules/sch_nope", "/v1/schedules/x"):
        assert client.get(path, headers=theirs).status_code == 404
        assert client.patch(path, json={"enabled": False}, headers=theirs).status_code == 404
        assert client.delete(path, headers=theirs).status_code == 404
    assert client.get("/v1/schedules", headers=theirs).get_json()["data"] == []
    mine = client.get(f"/v1/schedules/{schedule['id']}", headers=tenant.headers("admin"))
    assert mine.get_json() == schedule


def audit_actions(container: Container, tenant: TenantKeys) -> list[str]:
    found = rows(
        container,
        "SELECT action FROM audit_events WHERE tenant_id = :t AND target_type = 'schedule' "
        "ORDER BY id",
        t=tenant.tenant_id,
    )
    return [action for (action,) in found]


def test_changes_are_audited(client: FlaskClient, tenant: TenantKeys) -> None:
    admin = tenant.headers("admin")
    schedule = create(client, tenant).get_json()
    path = f"/v1/schedules/{schedule['id']}"
    client.patch(path, json={"overlap": "skip"}, headers=admin)
    client.delete(path, headers=admin)
    events = client.get("/v1/audit-events?limit=100", headers=admin).get_json()["data"]
    ours = [e for e in reversed(events) if e["target_id"] == schedule["id"]]
    assert [e["action"] for e in ours] == ["schedule.create", "schedule.update", "schedule.delete"]
    assert {e["target_type"] for e in ours} == {"schedule"}
    assert ours[1]["details"] == {"changed": ["overlap"]}
    assert all(e["actor_key_id"] and e["request_id"] for e in ours)


def test_a_jobs_secret_fields_are_sealed_in_the_schedule(
    container: Container, client: FlaskClient, tenant: TenantKeys
) -> None:
    payload = {
        "url": "https://example.com/hook",
        "secret_headers": {"X-Api-Key": SECRET_VALUE},
        "headers": {"X-Plain": "visible"},
    }
    made = create(client, tenant, job={"type": "http", "payload": payload})
    assert made.status_code == 201, made.get_json()
    shown = made.get_json()["job"]["payload"]
    assert shown["secret_headers"] == {"X-Api-Key": "[redacted]"}
    assert shown["headers"] == {"X-Plain": "visible"}
    read = client.get(f"/v1/schedules/{made.get_json()['id']}", headers=tenant.headers("reader"))
    assert SECRET_VALUE not in read.text
    ((job, sealed),) = rows(
        container, "SELECT job::text, sealed FROM schedules WHERE id = :s", s=made.get_json()["id"]
    )
    assert SECRET_VALUE not in job and SECRET_VALUE not in sealed
    assert json.loads(container.box.open(sealed)) == {"secret_headers": {"X-Api-Key": SECRET_VALUE}}


def test_reencrypt_moves_a_schedules_sealed_fields_under_the_newest_key(
    container: Container, client: FlaskClient, tenant: TenantKeys
) -> None:
    payload = {"url": "https://example.com/hook", "secret_headers": {"X-Api-Key": SECRET_VALUE}}
    made = create(client, tenant, job={"type": "http", "payload": payload}).get_json()
    newest = generate_key()
    both = bootstrap(
        Settings.from_env(real_env(HOPPER_ENCRYPTION_KEYS=f"{newest},{TEST_ENCRYPTION_KEY}"))
    )
    only_new = bootstrap(Settings.from_env(real_env(HOPPER_ENCRYPTION_KEYS=newest)))
    back = bootstrap(
        Settings.from_env(real_env(HOPPER_ENCRYPTION_KEYS=f"{TEST_ENCRYPTION_KEY},{newest}"))
    )
    try:
        reencrypt_secrets(both)
        ((sealed,),) = rows(container, "SELECT sealed FROM schedules WHERE id = :s", s=made["id"])
        assert SECRET_VALUE in only_new.box.open(sealed)
        with pytest.raises(ValueError, match="no configured key"):
            container.box.open(sealed)
    finally:
        reencrypt_secrets(back)  # under the test key again, for the tests that come after
        for wiring in (both, only_new, back):
            wiring.engine.dispose()
