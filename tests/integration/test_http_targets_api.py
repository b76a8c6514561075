"""A tenant's `http` job settings over the API on real PostgreSQL: the target secret (shown
once, rotated with 24 hours of overlap), the private-host allow-list, the audit trail, and the
`http` payloads the API refuses or stores with their secret headers sealed."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from flask.testing import FlaskClient
from sqlalchemy import text

from domain.secrets import generate_key
from domain.settings import Settings
from hopper.bootstrap import Container, bootstrap
from hopper.reencrypt import reencrypt_secrets
from tests.factories import TenantKeys
from tests.services import TEST_ENCRYPTION_KEY, real_env

SECRET_VALUE = "hdr-value-0f-a-secret-header"


def rows(container: Container, sql: str, **params: object) -> list[tuple]:
    with container.uow() as uow:
        return [tuple(row) for row in uow.session.execute(text(sql), params)]


def audit_actions(container: Container, tenant: TenantKeys) -> list[str]:
    found = rows(
        container,
        "SELECT action FROM audit_events WHERE tenant_id = :t ORDER BY at, id",
        t=tenant.tenant_id,
    )
    return [action for (action,) in found if action.startswith("http_target")]


def test_the_secret_is_created_then_rotated_shown_once_and_audited(
    container: Container, client: FlaskClient, tenant: TenantKeys
) -> None:
    assert container.http_targets.signing(tenant.tenant_id).secrets == []
    first = client.post("/v1/http-target-secret", headers=tenant.headers("admin"))
    second = client.post("/v1/http-target-secret", headers=tenant.headers("admin"))

    assert first.status_code == second.status_code == 200
    assert first.headers["Cache-Control"] == "no-store"
    old, new = first.get_json()["secret"], second.get_json()["secret"]
    assert old.startswith("whsec_") and new.startswith("whsec_") and old != new
    assert container.http_targets.signing(tenant.tenant_id).secrets == [new, old]
    assert audit_actions(container, tenant) == [
        "http_target_secret.create",
        "http_target_secret.rotate",
    ]
    (stored,) = rows(
        container,
        "SELECT secret_ciphertext || coalesce(previous_secret_ciphertext, '') "
        "FROM http_target_settings WHERE tenant_id = :t",
        t=tenant.tenant_id,
    )
    assert old.removeprefix("whsec_") not in stored[0]
    assert new.removeprefix("whsec_") not in stored[0]


def test_the_old_secret_stops_signing_once_its_day_is_over(
    container: Container, client: FlaskClient, tenant: TenantKeys
) -> None:
    client.post("/v1/http-target-secret", headers=tenant.headers("admin"))
    new = client.post("/v1/http-target-secret", headers=tenant.headers("admin")).get_json()
    assert len(container.http_targets.signing(tenant.tenant_id).secrets) == 2
    with container.uow() as uow:
        uow.session.execute(
            text(
                "UPDATE http_target_settings SET previous_secret_until = now() - interval '1 s' "
                "WHERE tenant_id = :t"
            ),
            {"t": tenant.tenant_id},
        )
        uow.commit()
    assert container.http_targets.signing(tenant.tenant_id).secrets == [new["secret"]]


@pytest.mark.parametrize("role", ["reader", "submitter"])
def test_only_an_admin_changes_the_settings(
    container: Container, client: FlaskClient, tenant: TenantKeys, role: str
) -> None:
    headers = tenant.headers(role)
    assert client.post("/v1/http-target-secret", headers=headers).status_code == 403
    put = client.put("/v1/http-target-allowlist", headers=headers, json={"hosts": ["10.0.0.5"]})
    assert put.status_code == 403
    assert client.get("/v1/http-target-allowlist", headers=headers).status_code == 403
    assert (
        rows(
            container, "SELECT 1 FROM http_target_settings WHERE tenant_id = :t", t=tenant.tenant_id
        )
        == []
    )


def test_the_allow_list_is_replaced_normalized_and_audited(
    container: Container, client: FlaskClient, tenant: TenantKeys
) -> None:
    admin = tenant.headers("admin")
    assert client.get("/v1/http-target-allowlist", headers=admin).get_json() == {"hosts": []}
    hosts = ["Billing.Internal.", "10.0.0.5", "[fd00::1]", "billing.internal"]
    put = client.put("/v1/http-target-allowlist", headers=admin, json={"hosts": hosts})

    assert put.status_code == 200, put.get_json()
    listed = ["billing.internal", "10.0.0.5", "fd00::1"]
    assert put.get_json() == {"hosts": listed}
    assert client.get("/v1/http-target-allowlist", headers=admin).get_json() == {"hosts": listed}
    assert container.http_targets.signing(tenant.tenant_id).allowed_hosts == frozenset(listed)
    client.put("/v1/http-target-allowlist", headers=admin, json={"hosts": ["10.0.0.5"]})
    assert audit_actions(container, tenant) == ["http_target_allowlist.update"] * 2
    (details,) = rows(
        container,
        "SELECT details FROM audit_events WHERE tenant_id = :t "
        "AND action = 'http_target_allowlist.update' ORDER BY at DESC LIMIT 1",
        t=tenant.tenant_id,
    )
    assert details[0]["removed"] == ["billing.internal", "fd00::1"]


@pytest.mark.parametrize(
    ("hosts", "field"),
    [
        (["https://10.0.0.5"], "hosts.0"),
        (["ok.internal", "10.0.0.5:8080"], "hosts.1"),
        (["a/b"], "hosts.0"),
        (["-bad-.internal"], "hosts.0"),
        ("10.0.0.5", "hosts"),
        ([f"h{i}.internal" for i in range(101)], "hosts"),
    ],
)
def test_a_bad_allow_list_is_a_422_and_changes_nothing(
    container: Container, client: FlaskClient, tenant: TenantKeys, hosts: object, field: str
) -> None:
    answer = client.put(
        "/v1/http-target-allowlist", headers=tenant.headers("admin"), json={"hosts": hosts}
    )
    assert answer.status_code == 422, answer.get_json()
    assert answer.content_type == "application/problem+json"
    assert field in {error["field"] for error in answer.get_json()["errors"]}
    assert container.http_targets.signing(tenant.tenant_id).allowed_hosts == frozenset()


@pytest.mark.parametrize(
    "headers",
    [{"Host": "evil.example"}, {"Connection": "close"}, {"hopper-job-id": "x"}],
)
def test_an_http_job_with_a_forbidden_header_is_a_422_and_not_stored(
    container: Container, client: FlaskClient, tenant: TenantKeys, headers: dict[str, str]
) -> None:
    payload = {"url": "https://example.com/hook", "headers": headers}
    answer = client.post(
        "/v1/jobs", headers=tenant.headers(), json={"type": "http", "payload": payload}
    )
    assert answer.status_code == 422, answer.get_json()
    assert "payload.headers" in {error["field"] for error in answer.get_json()["errors"]}
    assert rows(container, "SELECT 1 FROM jobs WHERE tenant_id = :t", t=tenant.tenant_id) == []


@pytest.fixture
def sealed_job(client: FlaskClient, tenant: TenantKeys) -> Iterator[str]:
    payload = {
        "url": "https://example.com/hook",
        "secret_headers": {"X-Api-Key": SECRET_VALUE},
        "headers": {"X-Plain": "visible"},
    }
    answer = client.post(
        "/v1/jobs", headers=tenant.headers(), json={"type": "http", "payload": payload}
    )
    assert answer.status_code == 202, answer.get_json()
    yield answer.get_json()["id"]


def test_secret_headers_are_sealed_at_rest_and_redacted_when_shown(
    container: Container, client: FlaskClient, tenant: TenantKeys, sealed_job: str
) -> None:
    shown = client.get(f"/v1/jobs/{sealed_job}", headers=tenant.headers("reader")).get_json()
    assert shown["payload"]["secret_headers"] == {"X-Api-Key": "[redacted]"}
    assert shown["payload"]["headers"] == {"X-Plain": "visible"}
    ((payload, sealed),) = rows(
        container, "SELECT payload::text, sealed FROM jobs WHERE id = :j", j=sealed_job
    )
    assert SECRET_VALUE not in payload and SECRET_VALUE not in sealed
    assert json.loads(container.box.open(sealed)) == {"secret_headers": {"X-Api-Key": SECRET_VALUE}}
    claim = container.execution.claim(sealed_job, "test:1")
    assert claim is not None
    assert claim.payload["secret_headers"] == {"X-Api-Key": SECRET_VALUE}


def test_reencrypt_moves_target_secrets_and_sealed_fields_under_the_newest_key(
    client: FlaskClient, tenant: TenantKeys, sealed_job: str
) -> None:
    secret = client.post("/v1/http-target-secret", headers=tenant.headers("admin")).get_json()
    newest = generate_key()
    both = bootstrap(
        Settings.from_env(real_env(HOPPER_ENCRYPTION_KEYS=f"{newest},{TEST_ENCRYPTION_KEY}"))
    )
    assert reencrypt_secrets(both) >= 2
    only_new = bootstrap(Settings.from_env(real_env(HOPPER_ENCRYPTION_KEYS=newest)))
    assert only_new.http_targets.signing(tenant.tenant_id).secrets == [secret["secret"]]
    ((sealed,),) = rows(only_new, "SELECT sealed FROM jobs WHERE id = :j", j=sealed_job)
    assert SECRET_VALUE in only_new.box.open(sealed)
    # Back under the test key, for the tests that come after.
    reencrypt_secrets(
        bootstrap(
            Settings.from_env(real_env(HOPPER_ENCRYPTION_KEYS=f"{TEST_ENCRYPTION_KEY},{newest}"))
        )
    )
    for wiring in (both, only_new):
        wiring.engine.dispose()
