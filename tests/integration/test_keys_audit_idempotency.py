"""API keys over HTTP, the audit trail, idempotency keys and rate limits, on the real app with
PostgreSQL and Redis."""

from __future__ import annotations

import io
import json
import logging
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import redis
import structlog
from flask import Flask
from flask.testing import FlaskClient

from api.app import create_app
from domain.settings import Settings
from hopper.bootstrap import bootstrap
from hopper.logging import configure_logging
from tests.factories import TenantKeys, unique
from tests.services import REDIS_DB, real_env

ECHO = {"type": "echo", "payload": {"message": "x"}}


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_keys_are_created_shown_once_listed_and_revoked_at_once(
    client: FlaskClient, tenant: TenantKeys, other_tenant: TenantKeys
) -> None:
    created = client.post(
        "/v1/api-keys", json={"name": "ci", "role": "reader"}, headers=tenant.headers("admin")
    )
    assert created.status_code == 201
    assert created.headers["Cache-Control"] == "no-store"
    body = created.get_json()
    key = body.pop("key")
    assert key.startswith("hop_") and key.startswith(body["prefix"])
    assert body["role"] == "reader" and body["revoked_at"] is None
    assert client.get("/v1/jobs", headers=bearer(key)).status_code == 200
    listed = client.get("/v1/api-keys?limit=100", headers=tenant.headers("admin")).get_json()[
        "data"
    ]
    assert body["id"] in [k["id"] for k in listed]
    assert key not in str(listed)
    assert next(k for k in listed if k["id"] == body["id"])["last_used_at"] is not None
    assert (
        client.delete(
            f"/v1/api-keys/{body['id']}", headers=other_tenant.headers("admin")
        ).status_code
        == 404
    )
    assert (
        client.delete(f"/v1/api-keys/{body['id']}", headers=tenant.headers("admin")).status_code
        == 204
    )
    assert client.get("/v1/jobs", headers=bearer(key)).status_code == 401
    assert (
        client.post(
            "/v1/api-keys",
            json={"name": "x", "role": "reader"},
            headers=tenant.headers("submitter"),
        ).status_code
        == 403
    )


def test_an_expiry_in_the_past_is_refused_and_an_expired_key_fails(
    client: FlaskClient, tenant: TenantKeys, container
) -> None:
    past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    refused = client.post(
        "/v1/api-keys",
        json={"name": "old", "role": "reader", "expires_at": past},
        headers=tenant.headers("admin"),
    )
    assert refused.status_code == 422 and refused.get_json()["errors"][0]["field"] == "expires_at"
    from sqlalchemy import text

    from domain.model import Role

    soon = container.access.create_key(
        tenant.tenant_id, "soon", Role.READER, datetime.now(UTC) + timedelta(hours=1)
    )
    assert client.get("/v1/jobs", headers=bearer(soon.secret)).status_code == 200
    # Its expiry comes by the database's clock, the one requests are judged by: no sleep. This
    # process heard nothing of the change (it does not listen), and still refuses the key
    # within a second, once its cached entry is too old to trust.
    with container.engine.begin() as connection:
        connection.execute(
            text("UPDATE api_keys SET expires_at = now() - interval '1 second' WHERE id = :id"),
            {"id": soon.record.id},
        )
    changed = time.monotonic()
    while client.get("/v1/jobs", headers=bearer(soon.secret)).status_code != 401:
        assert time.monotonic() - changed < 1.0, "the expired key was still served after 1 s"
        time.sleep(0.02)


def test_sensitive_operations_are_audited(client: FlaskClient, tenant: TenantKeys) -> None:
    job = client.post(
        "/v1/jobs", json={**ECHO, "run_at": "2099-01-01T00:00:00Z"}, headers=tenant.headers()
    ).get_json()
    client.post(
        f"/v1/jobs/{job['id']}/cancel", headers={**tenant.headers(), "X-Request-Id": "req-audit-1"}
    )
    client.post(f"/v1/jobs/{job['id']}/retry", headers=tenant.headers())
    key = client.post(
        "/v1/api-keys", json={"name": "a", "role": "reader"}, headers=tenant.headers("admin")
    ).get_json()
    client.delete(f"/v1/api-keys/{key['id']}", headers=tenant.headers("admin"))
    hook = client.post(
        "/v1/webhook-endpoints",
        json={"url": "http://127.0.0.1:9/h"},
        headers=tenant.headers("admin"),
    ).get_json()
    client.post(
        f"/v1/webhook-endpoints/{hook['id']}/rotate-secret", headers=tenant.headers("admin")
    )
    events = client.get("/v1/audit-events?limit=100", headers=tenant.headers("admin")).get_json()[
        "data"
    ]
    actions = [e["action"] for e in events]
    for action in (
        "job.cancel",
        "job.retry",
        "api_key.create",
        "api_key.revoke",
        "webhook_endpoint.create",
        "webhook_endpoint.rotate_secret",
    ):
        assert action in actions, action
    cancel = next(e for e in events if e["action"] == "job.cancel")
    assert cancel["target_id"] == job["id"] and cancel["request_id"] == "req-audit-1"
    assert cancel["actor_key_id"] and cancel["ip"] == "127.0.0.1"
    assert hook["secret"] not in str(events)
    assert client.get("/v1/audit-events", headers=tenant.headers("submitter")).status_code == 403


def test_twenty_concurrent_identical_requests_create_one_job(
    app: Flask, tenant: TenantKeys
) -> None:
    key = unique("idem")
    answers = []
    barrier = threading.Barrier(20)

    def send() -> None:
        barrier.wait()
        answers.append(
            app.test_client().post(
                "/v1/jobs", json=ECHO, headers={**tenant.headers(), "Idempotency-Key": key}
            )
        )

    threads = [threading.Thread(target=send) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert {a.status_code for a in answers} <= {202, 409}
    created = {a.get_json()["id"] for a in answers if a.status_code == 202}
    assert len(created) == 1
    jobs = app.test_client().get("/v1/jobs?limit=100", headers=tenant.headers()).get_json()["data"]
    assert [j["id"] for j in jobs] == list(created)
    replay = app.test_client().post(
        "/v1/jobs", json=ECHO, headers={**tenant.headers(), "Idempotency-Key": key}
    )
    assert replay.status_code == 202
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.get_json()["id"] in created and replay.headers["Location"].endswith(
        replay.get_json()["id"]
    )


def test_idempotency_rules(
    client: FlaskClient, tenant: TenantKeys, other_tenant: TenantKeys, container
) -> None:
    key = unique("idem")
    first = client.post("/v1/jobs", json=ECHO, headers={**tenant.headers(), "Idempotency-Key": key})
    assert first.status_code == 202
    changed = client.post(
        "/v1/jobs",
        json={**ECHO, "priority": "high"},
        headers={**tenant.headers(), "Idempotency-Key": key},
    )
    assert changed.status_code == 422
    same_json = client.post(
        "/v1/jobs",
        data='{"payload": {"message": "x"},  "type": "echo"}',
        content_type="application/json",
        headers={**tenant.headers(), "Idempotency-Key": key},
    )
    assert same_json.status_code == 202 and same_json.get_json() == first.get_json()
    other = client.post(
        "/v1/jobs", json=ECHO, headers={**other_tenant.headers(), "Idempotency-Key": key}
    )
    assert other.status_code == 202 and other.get_json()["id"] != first.get_json()["id"]
    failed_key = unique("idem")
    bad = client.post(
        "/v1/jobs",
        json={"type": "nope"},
        headers={**tenant.headers(), "Idempotency-Key": failed_key},
    )
    assert bad.status_code == 422
    good = client.post(
        "/v1/jobs", json=ECHO, headers={**tenant.headers(), "Idempotency-Key": failed_key}
    )
    assert good.status_code == 202 and "Idempotent-Replayed" not in good.headers
    restarted = create_app(bootstrap(container.settings)).test_client()
    again = restarted.post(
        "/v1/jobs", json=ECHO, headers={**tenant.headers(), "Idempotency-Key": key}
    )
    assert again.headers["Idempotent-Replayed"] == "true" and again.get_json() == first.get_json()
    assert (
        client.post(
            "/v1/jobs", json=ECHO, headers={**tenant.headers(), "Idempotency-Key": ""}
        ).status_code
        == 422
    )


@pytest.fixture
def limited_app(migrated_database: str) -> Flask:
    # Counters of its own, empty: other tests' failed authentications from 127.0.0.1 must not
    # count here.
    url = f"redis://127.0.0.1:6379/{int(REDIS_DB) + 1}"
    redis.Redis.from_url(url).flushdb()
    settings = Settings.from_env(
        real_env(
            REDIS_URL=url,
            HOPPER_RATE_LIMIT_DEFAULT="6/minute",
            HOPPER_RATE_LIMIT_CREATE="2/minute",
            HOPPER_RATE_LIMIT_AUTH_FAILURES="3/minute",
        )
    )
    return create_app(bootstrap(settings))


def test_rate_limits_per_key_per_creating_routes_and_per_address(
    limited_app: Flask, tenant: TenantKeys, other_tenant: TenantKeys
) -> None:
    client = limited_app.test_client()
    created = [
        client.post("/v1/jobs", json=ECHO, headers=tenant.headers()).status_code for _ in range(3)
    ]
    assert created == [202, 202, 429]
    limited = client.post("/v1/jobs", json=ECHO, headers=tenant.headers())
    assert limited.mimetype == "application/problem+json"
    assert int(limited.headers["Retry-After"]) > 0
    assert {"X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"} <= set(
        limited.headers.keys()
    )
    reads = [client.get("/v1/jobs", headers=tenant.headers()).status_code for _ in range(3)]
    assert reads[:1] == [200] and reads[-1] == 429  # 6 in all, across every route
    assert client.get("/v1/jobs", headers=other_tenant.headers()).status_code == 200
    failures = [
        client.get("/v1/jobs", headers=bearer("hop_" + "x" * 40)).status_code for _ in range(4)
    ]
    assert failures == [401, 401, 401, 429]


def test_an_idempotent_replay_counts_against_the_creating_limit(
    limited_app: Flask, tenant: TenantKeys
) -> None:
    client = limited_app.test_client()
    again = {**tenant.headers(), "Idempotency-Key": unique("replay")}
    answers = [client.post("/v1/jobs", json=ECHO, headers=again) for _ in range(3)]
    assert [a.status_code for a in answers] == [202, 202, 429]
    assert answers[1].headers["Idempotent-Replayed"] == "true"  # it cost a lookup: it counts


@pytest.fixture
def process_log() -> Iterator[io.StringIO]:
    """The logging a `hopper serve` process has (hopper.logging), into a buffer: a line counts
    only if it would reach the process's output, not merely if a library wrote it."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    stream = io.StringIO()
    configure_logging(Settings.from_env({"HOPPER_LOG_FORMAT": "json"}), "web", stream)
    structlog.configure(cache_logger_on_first_use=False)
    yield stream
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()
    logging.captureWarnings(False)
    root.handlers[:] = handlers
    root.setLevel(level)


def test_rate_limits_fail_open_when_redis_is_down(
    migrated_database: str, tenant: TenantKeys, process_log: io.StringIO
) -> None:
    """With Redis unreachable the limits still hold, counted in process: under the limit every
    request is served, past it the answer is 429. Going past it is the point: a limiter that
    skipped its limits instead would serve them all. A log line says it fell back."""
    limit = 5
    settings = Settings.from_env(
        real_env(
            # Port 1 is privileged and nothing listens there: connecting is refused at once.
            REDIS_URL="redis://127.0.0.1:1/0",
            HOPPER_RATE_LIMIT_DEFAULT=f"{limit}/minute",
        )
    )
    client = create_app(bootstrap(settings)).test_client()
    served = [client.post("/v1/jobs", json=ECHO, headers=tenant.headers()).status_code]
    served += [client.get("/v1/jobs", headers=tenant.headers()).status_code for _ in range(limit)]
    assert served == [202] + [200] * (limit - 1) + [429]  # a submission counts as one request
    refused = client.get("/v1/jobs", headers=tenant.headers())
    assert refused.status_code == 429
    assert refused.headers["X-RateLimit-Limit"] == str(limit)
    assert int(refused.headers["Retry-After"]) > 0
    lines = [json.loads(line) for line in process_log.getvalue().splitlines()]
    assert {
        "logger": "api.rate_limits",
        "level": "warning",
        "event": "rate_limit_store_unavailable",
    } in [{k: line.get(k) for k in ("logger", "level", "event")} for line in lines]


def test_an_expired_idempotency_key_is_free_again(container, tenant: TenantKeys) -> None:
    from datetime import timedelta as td

    from domain.idempotency import Claim, IdempotencyService

    short = IdempotencyService(container.uow, container.box, keep=td(seconds=0))
    claim = Claim(tenant.tenant_id, "/v1/jobs", unique("idem"), "key_1")
    assert short.begin(claim, "h1") is None
    short.finish(claim, 202, "{}", {})
    assert short.begin(claim, "another body") is None  # past its time: neither 422 nor replay
    lasting = IdempotencyService(container.uow, container.box)
    with pytest.raises(Exception, match="in flight"):
        lasting.begin(claim, "another body")
