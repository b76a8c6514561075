"""The webhook endpoints API on real PostgreSQL: the guard at creation, on change and at
delivery, secrets at rest, tenancy, and the operator's re-encryption."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import create_engine, text

from api.app import create_app
from domain.secrets import generate_key
from domain.settings import Settings
from hopper.bootstrap import Container, bootstrap
from hopper.reencrypt import reencrypt_secrets
from tests.factories import TenantKeys
from tests.services import DATABASE_URL, TEST_ENCRYPTION_KEY, real_env
from workers.delivery import DeliveryRunner
from workers.outbound import OutboundClient, OutboundGuard, OutboundPolicy

REFUSED = [
    "https://127.0.0.1/",
    "https://localhost/",
    "https://[::1]/",
    "https://169.254.169.254/",
    "https://10.0.0.1/",
    "https://192.168.1.1/",
    "https://0.0.0.0/",
    "https://[fd00::1]/",
    "http://example.com/",
]
# Not an absolute http(s) URL as the document's pattern writes it: refused before the guard.
MALFORMED = [
    "file:///etc/passwd",
    "https://user:pw@example.com/",
    "https://example.com/#fragment",
    "https://bücher.example/",
    "https://example.com:65536/",
    "https://[1::2::3]/",
    "https://example.com/%zz",
    "https://example.com/\n",
    " https://example.com/",
]


@pytest.fixture(scope="module")
def strict_app(migrated_database: str) -> Flask:
    """Private networks and plain http not allowed, as in production."""
    settings = Settings.from_env(
        real_env(HOPPER_OUTBOUND_ALLOW_PRIVATE="false", HOPPER_OUTBOUND_ALLOW_HTTP="false")
    )
    return create_app(bootstrap(settings))


def create(client: FlaskClient, tenant: TenantKeys, url: str, **fields: object):
    return client.post(
        "/v1/webhook-endpoints", json={"url": url, **fields}, headers=tenant.headers("admin")
    )


@pytest.mark.parametrize("url", REFUSED)
def test_the_guard_refuses_these_urls_with_422(
    strict_app: Flask, tenant: TenantKeys, url: str
) -> None:
    response = create(strict_app.test_client(), tenant, url)
    assert response.status_code == 422, response.get_json()
    (error,) = response.get_json()["errors"]
    assert error["field"] == "url"
    assert error["message"].startswith("Refused")


@pytest.mark.parametrize("url", MALFORMED)
def test_a_url_not_in_the_documented_form_is_refused_with_422(
    client: FlaskClient, tenant: TenantKeys, url: str
) -> None:
    response = create(client, tenant, url)
    assert response.status_code == 422, response.get_json()
    (error,) = response.get_json()["errors"]
    assert error["field"] == "url"
    assert error["message"].startswith("Not an absolute http(s) URL")


def test_endpoint_lifecycle_and_tenancy(
    client: FlaskClient, tenant: TenantKeys, other_tenant: TenantKeys
) -> None:
    created = create(
        client, tenant, "http://127.0.0.1:9/hooks", event_types=["job.failed"], description="ops"
    )
    assert created.status_code == 201
    hook = created.get_json()
    assert created.headers["Location"] == f"/v1/webhook-endpoints/{hook['id']}"
    assert hook["event_types"] == ["job.failed"] and hook["job_types"] is None
    assert hook["enabled"] is True and hook["disabled_reason"] is None
    path = f"/v1/webhook-endpoints/{hook['id']}"
    shown = client.get(path, headers=tenant.headers("admin")).get_json()
    assert "secret" not in shown and shown["description"] == "ops"
    assert client.get(path, headers=tenant.headers("submitter")).status_code == 403
    assert client.get(path, headers=other_tenant.headers("admin")).status_code == 404
    changed = client.patch(
        path, json={"job_types": ["echo"], "enabled": False}, headers=tenant.headers("admin")
    )
    assert changed.status_code == 200
    assert changed.get_json()["job_types"] == ["echo"] and changed.get_json()["enabled"] is False
    bad = client.patch(
        path, json={"event_types": ["job.exploded"]}, headers=tenant.headers("admin")
    )
    assert bad.status_code == 422 and bad.get_json()["errors"][0]["field"].startswith("event_types")
    listed = client.get("/v1/webhook-endpoints", headers=tenant.headers("admin")).get_json()
    assert [e["id"] for e in listed["data"]] == [hook["id"]]
    assert client.delete(path, headers=tenant.headers("admin")).status_code == 204
    assert client.get(path, headers=tenant.headers("admin")).status_code == 404


def test_a_refused_url_in_a_change_is_422(
    client: FlaskClient, strict_app: Flask, tenant: TenantKeys
) -> None:
    hook = create(client, tenant, "http://127.0.0.1:9/hooks").get_json()
    path = f"/v1/webhook-endpoints/{hook['id']}"
    patched = strict_app.test_client().patch(
        path, json={"url": "https://10.0.0.1/"}, headers=tenant.headers("admin")
    )
    assert patched.status_code == 422
    assert patched.get_json()["errors"][0]["field"] == "url"
    assert client.get(path, headers=tenant.headers("admin")).get_json()["url"] == hook["url"]


def test_a_change_rechecks_the_stored_url_unless_it_disables_the_endpoint(
    client: FlaskClient, strict_app: Flask, tenant: TenantKeys
) -> None:
    # Stored while 127.0.0.1 was allowed; the strict app's guard refuses it now.
    hook = create(client, tenant, "http://127.0.0.1:9/hooks", description="before").get_json()
    path = f"/v1/webhook-endpoints/{hook['id']}"
    admin = tenant.headers("admin")
    strict = strict_app.test_client()
    described = strict.patch(path, json={"description": "after"}, headers=admin)
    assert described.status_code == 422, described.get_json()
    (error,) = described.get_json()["errors"]
    assert error["field"] == "url" and error["message"].startswith("Refused")
    assert client.get(path, headers=admin).get_json()["description"] == "before"
    disabled = strict.patch(path, json={"enabled": False}, headers=admin)
    assert disabled.status_code == 200, disabled.get_json()
    assert disabled.get_json()["enabled"] is False
    # Nothing is sent to a disabled endpoint, so its URL needs no check until it is enabled.
    assert strict.patch(path, json={"description": "off"}, headers=admin).status_code == 200
    enabled = strict.patch(path, json={"enabled": True}, headers=admin)
    assert enabled.status_code == 422
    assert enabled.get_json()["errors"][0]["field"] == "url"
    assert client.get(path, headers=admin).get_json()["enabled"] is False


def _test_delivery(client: FlaskClient, tenant: TenantKeys) -> tuple[str, str]:
    """A new endpoint on 127.0.0.1 and the pending delivery of a test event: its path and id."""
    hook = create(client, tenant, "http://127.0.0.1:9/hooks").get_json()
    path = f"/v1/webhook-endpoints/{hook['id']}"
    assert client.post(f"{path}/test", headers=tenant.headers("admin")).status_code == 202
    page = client.get(f"{path}/deliveries", headers=tenant.headers("admin")).get_json()
    (pending,) = page["data"]
    return path, pending["id"]


def _attempt(
    container: Container, client: FlaskClient, tenant: TenantKeys, delivery: tuple[str, str]
) -> dict:
    """The delivery after one attempt through a guard that refuses private addresses and
    resolves no name, as a delivery worker would make it; nothing leaves the machine."""

    def unresolvable(host: str, port: int) -> list[str]:
        raise OSError("no such name")

    guard = OutboundGuard(OutboundPolicy(False, True, ()), resolve=unresolvable)
    path, delivery_id = delivery
    DeliveryRunner(container.deliveries, OutboundClient(guard)).run(delivery_id)
    answer = client.get(f"{path}/deliveries/{delivery_id}", headers=tenant.headers("admin"))
    return dict(answer.get_json())


def test_a_refused_delivery_fails_at_once_and_an_unresolved_one_is_retried(
    container: Container, client: FlaskClient, tenant: TenantKeys
) -> None:
    refused = _attempt(container, client, tenant, _test_delivery(client, tenant))
    assert refused["status"] == "failed", refused
    assert refused["attempts"] == 1 and refused["next_attempt_at"] is None
    (attempt,) = refused["attempt_log"]
    assert attempt["status_code"] is None
    assert attempt["error"] == "refused: 127.0.0.1 is a loopback address"

    unresolved = _test_delivery(client, tenant)
    # Through the API a name would be resolved by the system at creation; this one never is.
    with container.uow() as uow:
        uow.session.execute(
            text("UPDATE webhook_endpoints SET url = 'http://hooks.test:9/' WHERE id = :id"),
            {"id": unresolved[0].rsplit("/", 1)[1]},
        )
        uow.commit()
    retried = _attempt(container, client, tenant, unresolved)
    assert retried["status"] == "pending", retried
    assert retried["attempts"] == 1 and retried["next_attempt_at"] is not None
    assert [a["error"] for a in retried["attempt_log"]] == ["the host does not resolve"]


def test_no_webhook_secret_is_stored_in_clear_text(client: FlaskClient, tenant: TenantKeys) -> None:
    secrets = [create(client, tenant, "http://127.0.0.1:9/a").get_json()["secret"]]
    hook_id = client.get("/v1/webhook-endpoints", headers=tenant.headers("admin")).get_json()[
        "data"
    ][0]["id"]
    rotated = client.post(
        f"/v1/webhook-endpoints/{hook_id}/rotate-secret", headers=tenant.headers("admin")
    )
    secrets.append(rotated.get_json()["secret"])
    engine = create_engine(DATABASE_URL)
    with engine.connect() as connection:
        rows = (
            connection.execute(
                text("SELECT * FROM webhook_endpoints WHERE tenant_id = :t"),
                {"t": tenant.tenant_id},
            )
            .mappings()
            .all()
        )
    engine.dispose()
    raw = repr([dict(row) for row in rows])
    assert rows and "whsec_" not in raw
    for secret in secrets:
        assert secret not in raw and secret.removeprefix("whsec_") not in raw


def test_reencrypt_moves_secrets_under_the_newest_key(
    container: Container, client: FlaskClient, tenant: TenantKeys
) -> None:
    secret = create(client, tenant, "http://127.0.0.1:9/r").get_json()["secret"]
    newest = generate_key()
    both = bootstrap(
        Settings.from_env(real_env(HOPPER_ENCRYPTION_KEYS=f"{newest},{TEST_ENCRYPTION_KEY}"))
    )
    assert reencrypt_secrets(both) >= 1
    only_new = bootstrap(Settings.from_env(real_env(HOPPER_ENCRYPTION_KEYS=newest)))
    with only_new.uow() as uow:
        stored = [
            only_new.box.open(row.secret_ciphertext)
            for row in uow.session.execute(
                text("SELECT secret_ciphertext FROM webhook_endpoints WHERE tenant_id = :t"),
                {"t": tenant.tenant_id},
            )
        ]
    assert secret in stored
    assert (
        reencrypt_secrets(
            bootstrap(
                Settings.from_env(
                    real_env(HOPPER_ENCRYPTION_KEYS=f"{TEST_ENCRYPTION_KEY},{newest}")
                )
            )
        )
        >= 1
    )
    for wiring in (both, only_new):
        wiring.engine.dispose()
