"""A job's transition writes its webhook deliveries in its own transaction; an endpoint deleted
at the same moment must neither fail that transaction nor leave a delivery behind. Two real
PostgreSQL transactions, interleaved by hand at the point where the race was: after the
transition has read the endpoints and before it inserts their deliveries."""

from __future__ import annotations

import threading

from flask.testing import FlaskClient
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from domain.webhooks.model import Delivery, Endpoint
from domain.webhooks.outbox import add_deliveries, enabled_endpoints, new_event
from hopper.bootstrap import Container
from tests.factories import TenantKeys


def test_an_endpoint_deleted_while_a_transition_writes_its_deliveries(
    container: Container, client: FlaskClient, tenant: TenantKeys
) -> None:
    created = client.post(
        "/v1/webhook-endpoints",
        json={"url": "http://127.0.0.1:9/hook"},
        headers=tenant.headers("admin"),
    )
    assert created.status_code == 201
    endpoint_id = created.get_json()["id"]
    deleted = threading.Event()

    def delete_endpoint() -> None:
        with Session(container.engine) as other, other.begin():
            other.execute(delete(Endpoint).where(Endpoint.id == endpoint_id))
        deleted.set()

    with Session(container.engine) as session, session.begin():
        now = session.scalar(select(func.now()))
        targets = enabled_endpoints(session, tenant.tenant_id)
        assert [e.id for e in targets] == [endpoint_id]
        deleter = threading.Thread(target=delete_endpoint)
        deleter.start()
        # The delete must wait for this transaction, however long it takes: without the lock it
        # commits at once, and the insert below fails on the foreign key.
        assert not deleted.wait(1.0), "the endpoint was deleted under a transition reading it"
        event = new_event(tenant.tenant_id, "webhook.test", {}, now)
        add_deliveries(session, event, targets, now)
    deleter.join(timeout=30)
    assert deleted.is_set()

    with Session(container.engine) as session:
        left = session.scalars(select(Delivery).where(Delivery.endpoint_id == endpoint_id)).all()
        gone = session.get(Endpoint, endpoint_id)
    assert (left, gone) == ([], None)
