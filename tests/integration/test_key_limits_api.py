"""Concurrency limits and rates over the API on real PostgreSQL: set, read and removed by key,
validated, for admins only (readers read), scoped to the tenant, audited; and jobs that carry
their keys."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient
from sqlalchemy import text

from hopper.bootstrap import Container
from tests.factories import TenantKeys

ECHO = {"type": "echo", "payload": {"message": "x"}}


def audit_actions(container: Container, tenant: TenantKeys) -> list[tuple[str, str]]:
    with container.uow() as uow:
        rows = uow.session.execute(
            text(
                "SELECT action, details->>'key' FROM audit_events WHERE tenant_id = :t"
                " AND action LIKE '%limit.%' ORDER BY at, id"
            ),
            {"t": tenant.tenant_id},
        )
        return [(row[0], row[1]) for row in rows]


@pytest.mark.parametrize(
    ("path", "field", "value", "changed"),
    [
        ("/v1/concurrency-limits", "limit", 2, 5),
        ("/v1/rate-limits", "rate", "10/second", "300/minute"),
    ],
)
def test_a_key_is_set_read_changed_and_removed_by_its_admin_and_audited(
    client: FlaskClient,
    container: Container,
    tenant: TenantKeys,
    other_tenant: TenantKeys,
    path: str,
    field: str,
    value: object,
    changed: object,
) -> None:
    key = f"{path}/account 42/eu/{'x' * 60}"  # spaces, slashes, longer than an id
    admin, reader = tenant.headers("admin"), tenant.headers("reader")
    assert client.get(key, headers=reader).status_code == 404
    made = client.put(key, json={field: value}, headers=admin)
    assert made.status_code == 200, made.get_json()
    named = f"account 42/eu/{'x' * 60}"
    assert made.get_json()[field] == value and made.get_json()["key"] == named
    assert client.put(key, json={field: changed}, headers=admin).get_json()[field] == changed
    assert client.get(key, headers=reader).get_json()[field] == changed
    assert client.get(key, headers=other_tenant.headers("admin")).status_code == 404
    assert client.put(key, json={field: value}, headers=reader).status_code == 403
    assert client.delete(key, headers=admin).status_code == 204
    assert client.get(key, headers=reader).status_code == 404
    assert client.delete(key, headers=admin).status_code == 404
    kind = "concurrency_limit" if field == "limit" else "rate_limit"
    assert audit_actions(container, tenant) == [
        (f"{kind}.set", named),
        (f"{kind}.set", named),
        (f"{kind}.delete", named),
    ]


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/v1/concurrency-limits/k", {"limit": 0}, "limit"),
        ("/v1/concurrency-limits/k", {"limit": 1001}, "limit"),
        ("/v1/concurrency-limits/k", {"limit": "2"}, "limit"),
        ("/v1/rate-limits/k", {"rate": "fast"}, "rate"),
        ("/v1/rate-limits/k", {"rate": "0/second"}, "rate"),
        ("/v1/rate-limits/k", {"rate": "10/day"}, "rate"),
        (f"/v1/rate-limits/{'k' * 201}", {"rate": "1/second"}, "key"),
    ],
)
def test_a_bad_limit_is_a_422_naming_its_field_and_changes_nothing(
    client: FlaskClient, container: Container, tenant: TenantKeys, path: str, body: dict, field: str
) -> None:
    answer = client.put(path, json=body, headers=tenant.headers("admin"))
    assert answer.status_code == 422, answer.get_json()
    assert answer.content_type == "application/problem+json"
    assert [error["field"] for error in answer.get_json()["errors"]] == [field]
    assert audit_actions(container, tenant) == []


def test_a_job_carries_its_keys_and_a_key_too_long_is_refused(
    client: FlaskClient, tenant: TenantKeys
) -> None:
    keyed = {**ECHO, "concurrency_key": "account-42", "rate_key": "partner-api"}
    job = client.post("/v1/jobs", json=keyed, headers=tenant.headers()).get_json()
    assert (job["concurrency_key"], job["rate_key"]) == ("account-42", "partner-api")
    plain = client.post("/v1/jobs", json=ECHO, headers=tenant.headers()).get_json()
    assert (plain["concurrency_key"], plain["rate_key"]) == (None, None)
    long = client.post("/v1/jobs", json={**ECHO, "rate_key": "k" * 201}, headers=tenant.headers())
    assert long.status_code == 422
    assert [error["field"] for error in long.get_json()["errors"]] == ["rate_key"]
