"""Idempotency keys as README "Keys, limits and safety" promises them, on real PostgreSQL: scoped
to the request path, holding with Redis down, and on every POST, not only job submissions: a
replay answers the first status and body with `Idempotent-Replayed: true` and does nothing again.

"Nothing again" is read from what each POST leaves behind: its audit row (one per real change),
and the resources it creates."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import text
from sqlalchemy.engine import Engine

from api.app import create_app
from domain.settings import Settings
from hopper.bootstrap import Container, bootstrap
from tests.factories import TenantKeys, unique
from tests.services import real_env

ECHO = {"type": "echo", "payload": {"message": "x"}}
PARKED = {**ECHO, "run_at": "2099-01-01T00:00:00Z"}  # stays queued: nothing will run it
# Nothing listens on port 1 (privileged): every connection to "Redis" is refused at once.
REDIS_DOWN = "redis://127.0.0.1:1/0"


def with_key(headers: dict[str, str], key: str) -> dict[str, str]:
    return {**headers, "Idempotency-Key": key}


def twice(client: FlaskClient, path: str, headers: dict[str, str], **body: Any) -> Any:
    """POST the same request twice under one key: the second must be a replay of the first."""
    key = unique("idem")
    first = client.post(path, headers=with_key(headers, key), **body)
    again = client.post(path, headers=with_key(headers, key), **body)
    assert 200 <= first.status_code < 300, first.get_data(as_text=True)
    assert "Idempotent-Replayed" not in first.headers
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert again.status_code == first.status_code
    assert again.get_json() == first.get_json()
    return first.get_json()


def audit_count(engine: Engine, action: str, target_id: str) -> int:
    with engine.connect() as connection:
        count: int = connection.execute(
            text("SELECT count(*) FROM audit_events WHERE action = :a AND target_id = :t"),
            {"a": action, "t": target_id},
        ).scalar_one()
        return count


def records(engine: Engine, tenant_id: str, key: str) -> set[str]:
    with engine.connect() as connection:
        rows = connection.execute(
            text("SELECT route FROM idempotency_records WHERE tenant_id = :t AND key = :k"),
            {"t": tenant_id, "k": key},
        )
        return {row.route for row in rows}


def parked_job(client: FlaskClient, tenant: TenantKeys) -> str:
    created = client.post("/v1/jobs", json=PARKED, headers=tenant.headers())
    assert created.status_code == 202
    job_id: str = created.get_json()["id"]
    return job_id


def test_the_same_key_on_two_paths_is_two_records(
    client: FlaskClient, container: Container, tenant: TenantKeys
) -> None:
    key, admin = unique("shared"), tenant.headers("admin")
    job = client.post("/v1/jobs", json=PARKED, headers=with_key(admin, key))
    made = client.post(
        "/v1/api-keys", json={"name": unique("k"), "role": "reader"}, headers=with_key(admin, key)
    )
    # Another body under the same key, same credential: not a 422, since the path differs.
    assert (job.status_code, made.status_code) == (202, 201)
    assert "Idempotent-Replayed" not in made.headers
    first, second = parked_job(client, tenant), parked_job(client, tenant)
    for job_id in (first, second):
        canceled = client.post(f"/v1/jobs/{job_id}/cancel", headers=with_key(admin, key))
        assert canceled.status_code == 200 and canceled.get_json()["id"] == job_id
    assert records(container.engine, tenant.tenant_id, key) == {
        "/v1/jobs",
        "/v1/api-keys",
        f"/v1/jobs/{first}/cancel",
        f"/v1/jobs/{second}/cancel",
    }
    replayed = client.post("/v1/jobs", json=PARKED, headers=with_key(admin, key))
    assert replayed.headers["Idempotent-Replayed"] == "true"
    assert replayed.get_json()["id"] == job.get_json()["id"]


@pytest.fixture(scope="module")
def redis_down_app(migrated_database: str) -> Flask:
    return create_app(bootstrap(Settings.from_env(real_env(REDIS_URL=REDIS_DOWN))))


def test_keys_hold_with_redis_down(redis_down_app: Flask, tenant: TenantKeys) -> None:
    key, body = unique("noredis"), {**PARKED, "metadata": {"run": unique("r")}}
    answers: list[Any] = []
    barrier = threading.Barrier(20)

    def send() -> None:
        barrier.wait()
        answers.append(
            redis_down_app.test_client().post(
                "/v1/jobs", json=body, headers=with_key(tenant.headers(), key)
            )
        )

    threads = [threading.Thread(target=send) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert {a.status_code for a in answers} <= {202, 409}
    created = {a.get_json()["id"] for a in answers if a.status_code == 202}
    assert len(created) == 1, created  # replays carry the one id; nothing else was made
    client = redis_down_app.test_client()
    replay = client.post("/v1/jobs", json=body, headers=with_key(tenant.headers(), key))
    assert replay.status_code == 202 and replay.headers["Idempotent-Replayed"] == "true"
    assert replay.get_json()["id"] in created
    listed = client.get("/v1/jobs?limit=100", headers=tenant.headers()).get_json()["data"]
    assert [j["id"] for j in listed if j["metadata"] == body["metadata"]] == list(created)
    changed = client.post(
        "/v1/jobs", json={**body, "priority": "high"}, headers=with_key(tenant.headers(), key)
    )
    assert changed.status_code == 422


def test_endpoint_creation_and_its_other_posts_replay_and_do_nothing_again(
    client: FlaskClient, container: Container, tenant: TenantKeys
) -> None:
    admin, marker = tenant.headers("admin"), unique("hook")
    hook = twice(
        client,
        "/v1/webhook-endpoints",
        admin,
        json={"url": "http://127.0.0.1:9/h", "description": marker, "enabled": False},
    )
    endpoints = client.get("/v1/webhook-endpoints?limit=100", headers=admin).get_json()["data"]
    assert [e["id"] for e in endpoints if e["description"] == marker] == [hook["id"]]
    assert audit_count(container.engine, "webhook_endpoint.create", hook["id"]) == 1

    base = f"/v1/webhook-endpoints/{hook['id']}"
    rotated = twice(client, f"{base}/rotate-secret", admin)
    assert rotated["secret"] != hook["secret"]
    assert audit_count(container.engine, "webhook_endpoint.rotate_secret", hook["id"]) == 1

    sent = twice(client, f"{base}/test", admin)
    deliveries = client.get(f"{base}/deliveries", headers=admin).get_json()["data"]
    assert len(deliveries) == 1  # one test event, one delivery
    assert audit_count(container.engine, "webhook_endpoint.test", hook["id"]) == 1

    redelivered = twice(client, f"{base}/deliveries/{deliveries[0]['id']}/redeliver", admin)
    assert redelivered["id"] == deliveries[0]["id"]
    assert audit_count(container.engine, "webhook_delivery.redeliver", redelivered["id"]) == 1
    assert sent["event_id"]


def test_cancel_and_retry_replay_and_do_nothing_again(
    client: FlaskClient, container: Container, tenant: TenantKeys
) -> None:
    job_id = parked_job(client, tenant)
    canceled = twice(client, f"/v1/jobs/{job_id}/cancel", tenant.headers())
    assert canceled["status"] == "canceled"  # done again, it would be a 409 now
    assert audit_count(container.engine, "job.cancel", job_id) == 1
    retried = twice(client, f"/v1/jobs/{job_id}/retry", tenant.headers())
    assert retried["status"] == "queued"  # likewise: a queued job cannot be retried
    assert audit_count(container.engine, "job.retry", job_id) == 1


def test_key_creation_replays_the_same_secret_and_makes_one_key(
    client: FlaskClient, container: Container, tenant: TenantKeys
) -> None:
    name = unique("once")
    made = twice(
        client, "/v1/api-keys", tenant.headers("admin"), json={"name": name, "role": "reader"}
    )
    listed = client.get("/v1/api-keys?limit=100", headers=tenant.headers("admin")).get_json()
    assert [k["id"] for k in listed["data"] if k["name"] == name] == [made["id"]]
    assert audit_count(container.engine, "api_key.create", made["id"]) == 1
    works = client.get("/v1/jobs", headers={"Authorization": f"Bearer {made['key']}"})
    assert works.status_code == 200
