"""Retention of webhook events (README "Retention"): the scheduler's purge deletes events older
than `HOPPER_RETENTION_EVENTS_DAYS`, their deliveries and attempt logs with them, and keeps the
younger ones. Ages are set in the database; the purge runs as the scheduler runs it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask.testing import FlaskClient
from sqlalchemy import text
from sqlalchemy.engine import Engine

from domain.settings import Settings
from hopper.bootstrap import Container, bootstrap
from tests.factories import TenantKeys
from tests.services import real_env

KEEP_DAYS = 2


@pytest.fixture
def two_day_scheduler(migrated_database: str) -> Iterator[Container]:
    """The wiring of a scheduler configured to keep webhook events for two days."""
    wiring = bootstrap(
        Settings.from_env(real_env(HOPPER_RETENTION_EVENTS_DAYS=str(KEEP_DAYS))), pool_size=1
    )
    yield wiring
    wiring.engine.dispose()


def endpoint_with_test_events(
    client: FlaskClient, tenant: TenantKeys, count: int
) -> tuple[str, list[str]]:
    """An endpoint (disabled: nothing is sent) and ``count`` test events, one delivery each."""
    admin = tenant.headers("admin")
    body = {"url": "http://127.0.0.1:9/h", "enabled": False}
    endpoint_id = client.post("/v1/webhook-endpoints", json=body, headers=admin).get_json()["id"]
    events = []
    for _ in range(count):
        answer = client.post(f"/v1/webhook-endpoints/{endpoint_id}/test", headers=admin)
        assert answer.status_code == 202
        events.append(answer.get_json()["event_id"])
    return endpoint_id, events


def age_events(engine: Engine, event_ids: list[str], days: float) -> None:
    with engine.begin() as connection:
        connection.execute(
            text(
                "UPDATE webhook_events SET created_at = now() - make_interval(secs => :s) "
                "WHERE id = ANY(:ids)"
            ),
            {"s": days * 86400, "ids": event_ids},
        )


def log_an_attempt(engine: Engine, event_ids: list[str]) -> None:
    """Give every delivery of these events an attempt log line, as a delivery worker would."""
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO webhook_delivery_attempts "
                "(delivery_id, at, status_code, duration_ms, error, response_excerpt) "
                "SELECT id, now(), 500, 3, NULL, 'no' FROM webhook_deliveries "
                "WHERE event_id = ANY(:ids)"
            ),
            {"ids": event_ids},
        )


def left(engine: Engine, event_ids: list[str]) -> tuple[int, int, int]:
    """How many of these events, their deliveries and their attempt log lines remain."""
    with engine.connect() as connection:
        return tuple(  # type: ignore[return-value]
            connection.execute(text(query), {"ids": event_ids}).scalar_one()
            for query in (
                "SELECT count(*) FROM webhook_events WHERE id = ANY(:ids)",
                "SELECT count(*) FROM webhook_deliveries WHERE event_id = ANY(:ids)",
                "SELECT count(*) FROM webhook_delivery_attempts a JOIN webhook_deliveries d "
                "ON d.id = a.delivery_id WHERE d.event_id = ANY(:ids)",
            )
        )


def test_the_purge_deletes_old_events_with_their_deliveries_and_keeps_younger_ones(
    client: FlaskClient, container: Container, tenant: TenantKeys, two_day_scheduler: Container
) -> None:
    _, events = endpoint_with_test_events(client, tenant, 5)
    old, young = events[:3], events[3:]
    age_events(container.engine, old, KEEP_DAYS + 1)
    age_events(container.engine, young, KEEP_DAYS - 1)  # aged, but within retention
    log_an_attempt(container.engine, events)
    assert left(container.engine, old) == (3, 3, 3)
    assert left(container.engine, young) == (2, 2, 2)

    purged = [two_day_scheduler.scheduling.purge()]
    while purged[-1]:  # as the scheduler does: a batch per pass while there is a backlog
        purged.append(two_day_scheduler.scheduling.purge())
    assert sum(purged) >= len(old), f"the purge reported {purged}: it deleted nothing"
    assert left(container.engine, old) == (0, 0, 0)
    assert left(container.engine, young) == (2, 2, 2)
