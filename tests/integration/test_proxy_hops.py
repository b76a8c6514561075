"""HOPPER_TRUSTED_PROXY_HOPS: behind that many proxies the client's address comes from
X-Forwarded-For (audit trail, per-address limits); with 0 the header is never read."""

from __future__ import annotations

import pytest
import redis
from flask import Flask

from api.app import create_app
from domain.settings import Settings
from hopper.bootstrap import bootstrap
from tests.factories import TenantKeys
from tests.services import REDIS_DB, real_env

FORWARDED = {"X-Forwarded-For": "203.0.113.9, 198.51.100.7"}  # the proxy appended the last


def app_with(hops: int, **env: str) -> Flask:
    return create_app(
        bootstrap(Settings.from_env(real_env(HOPPER_TRUSTED_PROXY_HOPS=str(hops), **env)))
    )


def audited_ip(app: Flask, tenant: TenantKeys) -> str:
    client = app.test_client()
    created = client.post(
        "/v1/api-keys",
        json={"name": "via proxy", "role": "reader"},
        headers={**tenant.headers("admin"), **FORWARDED},
    )
    assert created.status_code == 201
    events = client.get("/v1/audit-events", headers=tenant.headers("admin")).get_json()["data"]
    (event,) = [e for e in events if e["target_id"] == created.get_json()["id"]]
    return str(event["ip"])


@pytest.mark.parametrize(
    ("hops", "ip"), [(1, "198.51.100.7"), (2, "203.0.113.9"), (0, "127.0.0.1")]
)
def test_the_audit_trail_takes_the_address_the_trusted_proxy_saw(
    migrated_database: str, tenant: TenantKeys, hops: int, ip: str
) -> None:
    assert audited_ip(app_with(hops), tenant) == ip


@pytest.mark.parametrize("hops", [0, 1])
def test_per_address_limits_count_each_forwarded_client_apart_only_behind_a_proxy(
    migrated_database: str, hops: int
) -> None:
    url = f"redis://127.0.0.1:6379/{int(REDIS_DB) + 2}"
    redis.Redis.from_url(url).flushdb()
    client = app_with(hops, REDIS_URL=url, HOPPER_RATE_LIMIT_AUTH_FAILURES="2/minute").test_client()
    bad = {"Authorization": "Bearer hop_" + "x" * 40}

    def attempt(address: str) -> int:
        return client.get("/v1/jobs", headers={**bad, "X-Forwarded-For": address}).status_code

    assert [attempt("192.0.2.1") for _ in range(3)] == [401, 401, 429]
    # Behind a proxy another client has its own count; with none, the header is a lie anyone
    # can tell, and every request counts against the one real address.
    assert attempt("192.0.2.2") == (401 if hops else 429)
