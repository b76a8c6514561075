"""Inputs that once got a 500, on the real app and PostgreSQL: date-times that UTC cannot hold,
NUL characters in query values and ids, and a redelivery racing a delivery worker."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import create_engine, text

from domain.webhooks.repository import WebhookRepository
from tests.factories import TenantKeys
from tests.services import DATABASE_URL

BEFORE_YEAR_ONE = "0001-01-01T00:30:00+01:00"
AFTER_YEAR_9999 = "9999-12-31T23:30:00-01:00"
ECHO = {"type": "echo", "payload": {"message": "x"}}


def field_errors(answer: Any) -> list[str]:
    assert answer.status_code == 422, answer.text
    return [error["field"] for error in answer.get_json()["errors"]]


@pytest.mark.parametrize(
    ("method", "path", "body", "field"),
    [
        ("GET", f"/v1/jobs?created_after={BEFORE_YEAR_ONE}", None, "query.created_after"),
        ("GET", f"/v1/jobs?created_before={AFTER_YEAR_9999}", None, "query.created_before"),
        ("POST", "/v1/jobs", {**ECHO, "run_at": AFTER_YEAR_9999}, "run_at"),
        (
            "POST",
            "/v1/api-keys",
            {"name": "k", "role": "reader", "expires_at": AFTER_YEAR_9999},
            "expires_at",
        ),
    ],
)
def test_a_date_time_that_utc_cannot_hold_is_an_invalid_field(
    client: FlaskClient, tenant: TenantKeys, method: str, path: str, body: Any, field: str
) -> None:
    answer = client.open(
        path.replace("+", "%2B"), method=method, json=body, headers=tenant.headers("admin")
    )
    assert field_errors(answer) == [field]


@pytest.mark.parametrize(
    ("path", "field"),
    [("/v1/jobs?type=ec%00ho", "query.type"), ("/v1/api-keys?cursor=%00", "query.cursor")],
)
def test_a_nul_in_a_query_value_is_an_invalid_field(
    client: FlaskClient, tenant: TenantKeys, path: str, field: str
) -> None:
    assert field_errors(client.get(path, headers=tenant.headers("admin"))) == [field]


def _endpoint_with_a_delivery(client: FlaskClient, tenant: TenantKeys) -> tuple[str, str]:
    admin = tenant.headers("admin")
    body = {"url": "http://127.0.0.1:9/hooks", "enabled": False}
    endpoint_id = client.post("/v1/webhook-endpoints", json=body, headers=admin).get_json()["id"]
    assert (
        client.post(f"/v1/webhook-endpoints/{endpoint_id}/test", headers=admin).status_code == 202
    )
    page = client.get(f"/v1/webhook-endpoints/{endpoint_id}/deliveries", headers=admin).get_json()
    return endpoint_id, page["data"][0]["id"]


@pytest.mark.parametrize("delivery_id", ["%00", "dlv_%00", "job_01jd4b2v6v3cz8f0f2m9k7q1xw"])
def test_a_delivery_id_of_another_shape_is_not_found(
    client: FlaskClient, tenant: TenantKeys, delivery_id: str
) -> None:
    endpoint_id, _ = _endpoint_with_a_delivery(client, tenant)
    base = f"/v1/webhook-endpoints/{endpoint_id}/deliveries/{delivery_id}"
    assert client.get(base, headers=tenant.headers("admin")).status_code == 404
    assert client.post(f"{base}/redeliver", headers=tenant.headers("admin")).status_code == 404


def test_a_redelivery_that_races_a_delivery_worker_is_tried_again(
    client: FlaskClient, tenant: TenantKeys, monkeypatch: pytest.MonkeyPatch
) -> None:
    endpoint_id, delivery_id = _endpoint_with_a_delivery(client, tenant)
    other = create_engine(DATABASE_URL)
    reads = []
    original = WebhookRepository.event

    def event_read_while_a_worker_moves_the_delivery(repository: Any, event_id: str) -> Any:
        if not reads:  # the first time only: a delivery worker changes the row meanwhile
            with other.begin() as connection:
                connection.execute(
                    text("UPDATE webhook_deliveries SET version = version + 1 WHERE id = :id"),
                    {"id": delivery_id},
                )
        reads.append(event_id)
        return original(repository, event_id)

    monkeypatch.setattr(WebhookRepository, "event", event_read_while_a_worker_moves_the_delivery)
    path = f"/v1/webhook-endpoints/{endpoint_id}/deliveries/{delivery_id}/redeliver"
    answer = client.post(path, headers=tenant.headers("admin"))
    other.dispose()
    assert answer.status_code == 202, answer.text
    assert len(reads) == 2
