"""Quotas on real PostgreSQL (the usage kept by the triggers of migration 0013): past a
tenant's ceiling a submission or a creation is the `429` problem that names the quota, and
once work finishes (or keys go) it is accepted again; rate limits hold per tenant across its
keys, on real Redis."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient

from api.app import create_app
from domain.model import Role
from domain.settings import Settings
from hopper.bootstrap import Container, bootstrap
from tests.factories import TenantKeys, make_tenant
from tests.services import real_env

ECHO = {"type": "echo", "payload": {"message": "x"}}
QUOTA_EXCEEDED = "urn:hopper:problem:quota-exceeded"


def refused_for(answer, quota: str) -> bool:  # type: ignore[no-untyped-def]
    body = answer.get_json()
    return answer.status_code == 429 and body["type"] == QUOTA_EXCEEDED and quota in body["detail"]


def finish(container: Container, job_id: str) -> None:
    claim = container.execution.claim(job_id, "quota-test")
    assert claim is not None
    assert container.execution.succeed(claim, {"message": "x"}) is not None


def test_unfinished_jobs_past_the_ceiling_are_refused_until_some_finish(
    client: FlaskClient, container: Container, tenant: TenantKeys
) -> None:
    container.quotas.set(tenant.tenant_id, {"unfinished_jobs": 3})
    accepted = [client.post("/v1/jobs", json=ECHO, headers=tenant.headers()) for _ in range(3)]
    assert [a.status_code for a in accepted] == [202, 202, 202]
    over = client.post("/v1/jobs", json=ECHO, headers=tenant.headers())
    assert refused_for(over, "unfinished_jobs"), over.get_json()
    batch = client.post("/v1/jobs/batch", json={"jobs": [ECHO]}, headers=tenant.headers())
    assert refused_for(batch, "unfinished_jobs")
    listed = client.get("/v1/jobs?limit=100", headers=tenant.headers()).get_json()["data"]
    assert len(listed) == 3  # nothing of the refused ones was written

    finish(container, accepted[0].get_json()["id"])
    again = client.post("/v1/jobs", json=ECHO, headers=tenant.headers())
    assert again.status_code == 202
    assert refused_for(client.post("/v1/jobs", json=ECHO, headers=tenant.headers()), "unfinished")


def test_a_batch_past_the_ceiling_is_refused_whole(
    client: FlaskClient, container: Container, tenant: TenantKeys
) -> None:
    container.quotas.set(tenant.tenant_id, {"unfinished_jobs": 5})
    batch = client.post("/v1/jobs/batch", json={"jobs": [ECHO] * 6}, headers=tenant.headers())
    assert refused_for(batch, "unfinished_jobs")
    fits = client.post("/v1/jobs/batch", json={"jobs": [ECHO] * 5}, headers=tenant.headers())
    assert fits.status_code == 202


def test_stored_payload_bytes_have_a_ceiling_that_a_deleted_job_gives_back(
    client: FlaskClient, container: Container, tenant: TenantKeys
) -> None:
    big = {"type": "echo", "payload": {"message": "x" * 4000}}
    container.quotas.set(tenant.tenant_id, {"payload_bytes": 10_000})
    first = client.post("/v1/jobs", json=big, headers=tenant.headers()).get_json()
    assert client.post("/v1/jobs", json=big, headers=tenant.headers()).status_code == 202
    assert refused_for(client.post("/v1/jobs", json=big, headers=tenant.headers()), "payload")
    finish(container, first["id"])  # finished, its payload is still stored ...
    assert refused_for(client.post("/v1/jobs", json=big, headers=tenant.headers()), "payload")
    assert client.delete(f"/v1/jobs/{first['id']}", headers=tenant.headers()).status_code == 204
    assert client.post("/v1/jobs", json=big, headers=tenant.headers()).status_code == 202


def test_api_keys_and_endpoints_have_ceilings(
    client: FlaskClient, container: Container, tenant: TenantKeys
) -> None:
    container.quotas.set(tenant.tenant_id, {"api_keys": 4, "webhook_endpoints": 1})
    admin = tenant.headers("admin")
    made = client.post("/v1/api-keys", json={"name": "fourth", "role": "reader"}, headers=admin)
    assert made.status_code == 201  # the tenant's three, and this one
    over = client.post("/v1/api-keys", json={"name": "fifth", "role": "reader"}, headers=admin)
    assert refused_for(over, "api_keys")
    revoked = client.delete(f"/v1/api-keys/{made.get_json()['id']}", headers=admin)
    assert revoked.status_code == 204
    assert client.post("/v1/api-keys", json={"name": "again", "role": "reader"}, headers=admin)
    hook = {"url": "http://127.0.0.1:9/hook"}
    assert client.post("/v1/webhook-endpoints", json=hook, headers=admin).status_code == 201
    assert refused_for(
        client.post("/v1/webhook-endpoints", json=hook, headers=admin), "webhook_endpoints"
    )


@pytest.fixture
def tight(migrated_database: str) -> Container:
    """A stack whose keys may each send 1,000 requests a minute, and whose tenants 30."""
    env = real_env(
        HOPPER_RATE_LIMIT_DEFAULT="1000/minute", HOPPER_RATE_LIMIT_TENANT_DEFAULT="30/minute"
    )
    return bootstrap(Settings.from_env(env))


def test_fresh_keys_of_one_tenant_share_its_allowance(tight: Container) -> None:
    client = create_app(tight).test_client()
    tenant = make_tenant(tight.access)
    keys = [
        tight.access.create_key(tenant.tenant_id, f"fresh-{n}", Role.READER).secret
        for n in range(20)
    ]
    answers = [
        client.get("/v1/jobs", headers={"Authorization": f"Bearer {key}"}).status_code
        for key in keys
        for _ in range(3)
    ]
    # 60 requests, each key's 3 far below its own 1,000: only the tenant's 30 can refuse them
    assert answers.count(200) == 30 and answers.count(429) == 30, answers
    other = make_tenant(tight.access)  # another tenant's allowance is its own
    assert client.get("/v1/jobs", headers=other.headers("reader")).status_code == 200
