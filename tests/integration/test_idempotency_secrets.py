"""Answers kept for idempotency keys hold no secret in clear, and replay only to the API key
that made the request."""

from __future__ import annotations

import re

from flask.testing import FlaskClient
from sqlalchemy import text

from hopper.bootstrap import Container
from tests.factories import TenantKeys, unique
from tests.services import pg_dump

# Whole tokens only: inside a Fernet token (URL-safe base64) `hop_` and 40 letters turn up by
# chance, about once in 60 million characters.
_NOT_BASE64 = r"(?<![A-Za-z0-9_\-]){}(?![A-Za-z0-9_\-+/=])"
FULL_KEY = re.compile(_NOT_BASE64.format(r"hop_[A-Za-z0-9]{40}"))
FULL_SECRET = re.compile(_NOT_BASE64.format(r"whsec_[A-Za-z0-9+/]{43}="))


def admin_key(client: FlaskClient, tenant: TenantKeys, name: str) -> dict:
    created = client.post(
        "/v1/api-keys", json={"name": name, "role": "admin"}, headers=tenant.headers("admin")
    )
    assert created.status_code == 201
    return created.get_json()


def bearer(key: str, idempotency_key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}", "Idempotency-Key": idempotency_key}


def test_a_dump_after_idempotent_key_creation_and_rotation_holds_neither_secret(
    client: FlaskClient, tenant: TenantKeys
) -> None:
    idem = unique("ak")
    body = {"name": "made once", "role": "reader"}
    first = client.post(
        "/v1/api-keys", json=body, headers={**tenant.headers("admin"), "Idempotency-Key": idem}
    )
    replay = client.post(
        "/v1/api-keys", json=body, headers={**tenant.headers("admin"), "Idempotency-Key": idem}
    )
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.get_json()["key"] == first.get_json()["key"]  # sealed, and opened for its owner
    hook = client.post(
        "/v1/webhook-endpoints",
        json={"url": "http://127.0.0.1:9/h"},
        headers=tenant.headers("admin"),
    ).get_json()
    rotated = client.post(
        f"/v1/webhook-endpoints/{hook['id']}/rotate-secret",
        headers={**tenant.headers("admin"), "Idempotency-Key": unique("rot")},
    )
    assert rotated.status_code == 200
    secrets = [first.get_json()["key"], hook["secret"], rotated.get_json()["secret"]]
    records = pg_dump("--table", "idempotency_records")
    assert tenant.tenant_id in records  # the dump holds this test's records: it could tell
    assert not FULL_KEY.search(records) and not FULL_SECRET.search(records)
    everything = pg_dump()
    for secret in secrets:
        assert secret not in everything and secret.split("_", 1)[1] not in everything


def test_a_replay_is_served_only_to_the_key_that_made_the_request(
    client: FlaskClient, tenant: TenantKeys
) -> None:
    maker, other = (
        admin_key(client, tenant, "maker")["key"],
        admin_key(client, tenant, "other")["key"],
    )
    idem, body = unique("ak"), {"name": "secret-bearing", "role": "admin"}
    first = client.post("/v1/api-keys", json=body, headers=bearer(maker, idem))
    assert first.status_code == 201
    stolen = client.post("/v1/api-keys", json=body, headers=bearer(other, idem))
    assert stolen.status_code == 409
    assert stolen.mimetype == "application/problem+json"
    assert "another credential" in stolen.get_json()["detail"]
    assert "key" not in stolen.get_json() and first.get_json()["key"] not in stolen.get_data(
        as_text=True
    )
    in_flight_or_other_body = client.post(
        "/v1/api-keys", json={**body, "name": "changed"}, headers=bearer(other, idem)
    )
    assert in_flight_or_other_body.status_code == 409  # the owner is checked before the body
    mine = client.post("/v1/api-keys", json=body, headers=bearer(maker, idem))
    assert mine.status_code == 201 and mine.get_json() == first.get_json()


def test_answers_kept_before_the_owner_was_recorded_are_never_replayed(
    container: Container, client: FlaskClient, tenant: TenantKeys
) -> None:
    idem = unique("old")
    client.post(
        "/v1/jobs",
        json={"type": "echo", "payload": {"message": "x"}},
        headers={**tenant.headers(), "Idempotency-Key": idem},
    )
    with container.uow() as uow:  # as migration 0005 leaves a record stored in clear before it
        uow.session.execute(
            text(
                "UPDATE idempotency_records SET api_key_id = NULL, response_body = NULL"
                " WHERE key = :k"
            ),
            {"k": idem},
        )
        uow.session.commit()
    again = client.post(
        "/v1/jobs",
        json={"type": "echo", "payload": {"message": "x"}},
        headers={**tenant.headers(), "Idempotency-Key": idem},
    )
    assert again.status_code == 409  # refused, never run a second time
