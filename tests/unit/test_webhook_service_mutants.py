"""``WebhookService`` over the real unit of work (SQLite in memory): what each use case stores,
audits and publishes, and what it refuses. Written against the mutants that survived without it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy.orm.exc import StaleDataError

from domain.auth import Principal
from domain.errors import Conflict, NotFound, ValidationFailed
from domain.ids import new_id
from domain.ports import DeliverWebhook
from domain.services import webhooks as webhooks_module
from domain.services.webhooks import DeliveryView
from domain.webhooks.model import Delivery, DeliveryAttempt, Event
from tests.unit.memory_stack import SCHEDULE, MemoryStack

URL = "https://hooks.example/a"


@pytest.fixture
def stack() -> MemoryStack:
    return MemoryStack()


@pytest.fixture
def admin(stack: MemoryStack) -> Principal:
    return stack.principal()


def test_create_stores_the_endpoint_with_a_sealed_secret_and_audits_it(
    stack: MemoryStack, admin: Principal
) -> None:
    made = stack.webhooks.create(
        admin,
        {"url": URL, "description": "ops", "event_types": ["job.failed"], "job_types": ["echo"]},
    )
    endpoint = made.endpoint
    assert endpoint.id.startswith("whe_") and endpoint.tenant_id == admin.tenant_id
    assert made.secret.startswith("whsec_")
    stored = stack.stored_endpoint(endpoint.id)
    assert stored.url == URL and stored.description == "ops"
    assert stored.event_types == ["job.failed"] and stored.job_types == ["echo"]
    assert stored.enabled is True and stored.disabled_reason is None
    assert stored.secret_ciphertext != made.secret
    assert stack.container.box.open(stored.secret_ciphertext) == made.secret
    assert stored.created_at is not None and stored.updated_at == stored.created_at
    assert stack.guard.checked == [URL]
    event = stack.audit(admin.tenant_id)[-1]
    assert (event.action, event.target_type, event.target_id) == (
        "webhook_endpoint.create",
        "webhook_endpoint",
        endpoint.id,
    )
    assert event.details == {"url": URL}


def test_create_defaults_to_an_empty_description(stack: MemoryStack, admin: Principal) -> None:
    endpoint = stack.endpoint(admin)
    assert stack.stored_endpoint(endpoint.id).description == ""
    assert stack.stored_endpoint(endpoint.id).event_types is None


def test_a_refused_url_is_a_422_on_the_url_field_and_nothing_is_stored(
    stack: MemoryStack, admin: Principal
) -> None:
    stack.guard.refused[URL] = "a private address"
    with pytest.raises(ValidationFailed) as refused:
        stack.webhooks.create(admin, {"url": URL})
    [error] = refused.value.errors
    assert error.field == "url" and error.message == "Refused: a private address."
    assert stack.webhooks.list(admin, 10, None).items == []


def test_list_is_newest_first_paginated_and_tenant_scoped(
    stack: MemoryStack, admin: Principal
) -> None:
    made = [stack.endpoint(admin, f"https://hooks.example/{n}") for n in range(3)]
    stack.endpoint(stack.principal())  # another tenant's
    first = stack.webhooks.list(admin, 2, None)
    assert [e.id for e in first.items] == [made[2].id, made[1].id]
    assert first.next_cursor is not None
    second = stack.webhooks.list(admin, 2, first.next_cursor)
    assert [e.id for e in second.items] == [made[0].id] and second.next_cursor is None


def test_get_finds_only_the_tenants_own_endpoints(stack: MemoryStack, admin: Principal) -> None:
    endpoint = stack.endpoint(admin)
    assert stack.webhooks.get(admin, endpoint.id).id == endpoint.id
    for principal, endpoint_id in [
        (stack.principal(), endpoint.id),
        (admin, "nope"),
        (admin, new_id("whe")),
        (admin, endpoint.id.replace("whe_", "dlv_")),
    ]:
        with pytest.raises(NotFound) as missing:
            stack.webhooks.get(principal, endpoint_id)
        assert str(missing.value) == f"no webhook endpoint {endpoint_id}"


def test_update_applies_the_fields_audits_them_and_moves_updated_at(
    stack: MemoryStack, admin: Principal
) -> None:
    endpoint = stack.endpoint(admin)
    stack.set_rows(type(endpoint), endpoint.id, updated_at=endpoint.updated_at - timedelta(hours=1))
    changed = stack.webhooks.update(
        admin, endpoint.id, {"description": "new", "event_types": ["job.started"]}
    )
    stored = stack.stored_endpoint(endpoint.id)
    assert changed.description == stored.description == "new"
    assert stored.event_types == ["job.started"] and stored.url == URL
    assert stored.updated_at > endpoint.updated_at
    event = stack.audit(admin.tenant_id)[-1]
    assert (event.action, event.target_type, event.target_id) == (
        "webhook_endpoint.update",
        "webhook_endpoint",
        endpoint.id,
    )
    assert event.details == {"changed": ["description", "event_types"]}


def test_enabling_clears_why_it_was_disabled(stack: MemoryStack, admin: Principal) -> None:
    endpoint = stack.endpoint(admin)
    stack.set_rows(
        type(endpoint),
        endpoint.id,
        enabled=False,
        disabled_reason="410",
        failing_since=endpoint.created_at,
    )
    stack.webhooks.update(admin, endpoint.id, {"enabled": True})
    stored = stack.stored_endpoint(endpoint.id)
    assert stored.enabled is True
    assert stored.disabled_reason is None and stored.failing_since is None


def test_disabling_keeps_the_reason_fields_and_checks_no_url(
    stack: MemoryStack, admin: Principal
) -> None:
    endpoint = stack.endpoint(admin)
    stack.set_rows(type(endpoint), endpoint.id, disabled_reason="kept", failing_since=None)
    stack.guard.checked.clear()
    stack.guard.refused[URL] = "no longer allowed"
    stack.webhooks.update(admin, endpoint.id, {"enabled": False})
    assert stack.guard.checked == []
    stored = stack.stored_endpoint(endpoint.id)
    assert stored.enabled is False and stored.disabled_reason == "kept"


def test_a_change_checks_the_url_the_endpoint_will_be_called_at(
    stack: MemoryStack, admin: Principal
) -> None:
    endpoint = stack.endpoint(admin)
    stack.guard.checked.clear()
    stack.webhooks.update(admin, endpoint.id, {"description": "x"})  # stays enabled
    assert stack.guard.checked == [URL]
    stack.guard.checked.clear()
    stack.webhooks.update(admin, endpoint.id, {"url": "https://hooks.example/b"})
    assert stack.guard.checked == ["https://hooks.example/b"]
    stack.guard.refused["https://hooks.example/c"] = "nope"
    with pytest.raises(ValidationFailed):
        stack.webhooks.update(admin, endpoint.id, {"url": "https://hooks.example/c"})
    assert stack.stored_endpoint(endpoint.id).url == "https://hooks.example/b"


def test_a_new_url_is_checked_even_when_disabling(stack: MemoryStack, admin: Principal) -> None:
    endpoint = stack.endpoint(admin)
    stack.guard.checked.clear()
    stack.webhooks.update(admin, endpoint.id, {"url": "https://hooks.example/d", "enabled": False})
    assert stack.guard.checked == ["https://hooks.example/d"]


def test_enabling_a_disabled_endpoint_checks_its_stored_url(
    stack: MemoryStack, admin: Principal
) -> None:
    endpoint = stack.endpoint(admin)
    stack.webhooks.update(admin, endpoint.id, {"enabled": False})
    stack.guard.checked.clear()
    stack.webhooks.update(admin, endpoint.id, {"description": "still off"})
    assert stack.guard.checked == []  # disabled, and stays so: nothing to check
    stack.guard.refused[URL] = "no longer allowed"
    with pytest.raises(ValidationFailed):
        stack.webhooks.update(admin, endpoint.id, {"enabled": True})
    assert stack.stored_endpoint(endpoint.id).enabled is False


def test_a_url_changed_meanwhile_is_checked_again(
    stack: MemoryStack, admin: Principal, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The URL is checked outside the transaction; if another request changed it meanwhile,
    the one read inside is checked too."""
    endpoint = stack.endpoint(admin)
    real_get = stack.webhooks.get

    def get_then_change(principal: Principal, endpoint_id: str):  # type: ignore[no-untyped-def]
        found = real_get(principal, endpoint_id)
        stack.set_rows(type(endpoint), endpoint_id, url="https://hooks.example/meanwhile")
        return found

    monkeypatch.setattr(stack.webhooks, "get", get_then_change)
    stack.guard.checked.clear()
    stack.guard.refused["https://hooks.example/meanwhile"] = "private"
    with pytest.raises(ValidationFailed):
        stack.webhooks.update(admin, endpoint.id, {"description": "x"})
    assert stack.guard.checked == [URL, "https://hooks.example/meanwhile"]


def test_update_of_another_tenants_endpoint_is_not_found(
    stack: MemoryStack, admin: Principal
) -> None:
    endpoint = stack.endpoint(admin)
    with pytest.raises(NotFound):
        stack.webhooks.update(stack.principal(), endpoint.id, {"description": "x"})


def test_delete_removes_the_endpoint_and_audits_it(stack: MemoryStack, admin: Principal) -> None:
    endpoint = stack.endpoint(admin)
    other = stack.principal()
    with pytest.raises(NotFound):
        stack.webhooks.delete(other, endpoint.id)
    stack.webhooks.delete(admin, endpoint.id)
    with pytest.raises(NotFound):
        stack.webhooks.get(admin, endpoint.id)
    event = stack.audit(admin.tenant_id)[-1]
    assert (event.action, event.target_type, event.target_id, event.details) == (
        "webhook_endpoint.delete",
        "webhook_endpoint",
        endpoint.id,
        {},
    )


def test_rotate_keeps_the_old_secret_signing_for_a_day(
    stack: MemoryStack, admin: Principal
) -> None:
    made = stack.webhooks.create(admin, {"url": URL})
    rotated = stack.webhooks.rotate_secret(admin, made.endpoint.id)
    assert rotated.secret != made.secret and rotated.secret.startswith("whsec_")
    stored = stack.stored_endpoint(made.endpoint.id)
    box = stack.container.box
    assert box.open(stored.secret_ciphertext) == rotated.secret
    assert stored.previous_secret_ciphertext is not None
    assert box.open(stored.previous_secret_ciphertext) == made.secret
    assert stored.previous_secret_until == stored.updated_at + timedelta(hours=24)
    assert rotated.endpoint.id == made.endpoint.id
    event = stack.audit(admin.tenant_id)[-1]
    assert (event.action, event.target_type, event.target_id) == (
        "webhook_endpoint.rotate_secret",
        "webhook_endpoint",
        made.endpoint.id,
    )
    with pytest.raises(NotFound):
        stack.webhooks.rotate_secret(stack.principal(), made.endpoint.id)


def test_send_test_delivers_one_event_to_this_endpoint_alone(
    stack: MemoryStack, admin: Principal
) -> None:
    endpoint = stack.endpoint(admin)
    stack.endpoint(admin, "https://hooks.example/other")
    event_id = stack.webhooks.send_test(admin, endpoint.id, "req-1")
    assert event_id.startswith("msg_")
    page = stack.webhooks.deliveries(admin, endpoint.id, 10, None)
    [delivery] = page.items
    assert delivery.event_id == event_id and delivery.event_type == "webhook.test"
    assert delivery.status == "pending" and delivery.tenant_id == admin.tenant_id
    assert stack.publisher.published == [DeliverWebhook(delivery.id, "req-1")]
    with stack.uow() as uow:
        event = uow.session.get(Event, event_id)
        assert event is not None
        assert event.type == "webhook.test" and event.request_id == "req-1"
        assert event.tenant_id == admin.tenant_id and event.job_id is None
        assert f'"endpoint_id":"{endpoint.id}"' in event.body
    audit = stack.audit(admin.tenant_id)[-1]
    assert (audit.action, audit.target_type, audit.target_id, audit.details) == (
        "webhook_endpoint.test",
        "webhook_endpoint",
        endpoint.id,
        {"event_id": event_id},
    )
    with pytest.raises(NotFound):
        stack.webhooks.send_test(stack.principal(), endpoint.id, None)


def _deliveries(stack: MemoryStack, admin: Principal, endpoint_id: str, n: int) -> list[str]:
    for _ in range(n):
        stack.webhooks.send_test(admin, endpoint_id, None)
    return [d.id for d in stack.webhooks.deliveries(admin, endpoint_id, 100, None).items]


def test_deliveries_are_listed_newest_first_with_their_attempt_logs(
    stack: MemoryStack, admin: Principal
) -> None:
    endpoint = stack.endpoint(admin)
    ids = _deliveries(stack, admin, endpoint.id, 3)
    with stack.uow() as uow:
        uow.add(
            DeliveryAttempt(
                delivery_id=ids[1],
                at=uow.now(),
                status_code=500,
                duration_ms=3,
                error=None,
                response_excerpt="boom",
            )
        )
        uow.commit()
    first = stack.webhooks.deliveries(admin, endpoint.id, 2, None)
    assert [d.id for d in first.items] == ids[:2] and first.next_cursor is not None
    assert all(isinstance(d, DeliveryView) for d in first.items)
    assert first.items[0].attempt_log == []
    assert [a.status_code for a in first.items[1].attempt_log] == [500]
    rest = stack.webhooks.deliveries(admin, endpoint.id, 2, first.next_cursor)
    assert [d.id for d in rest.items] == ids[2:] and rest.next_cursor is None
    with pytest.raises(NotFound):
        stack.webhooks.deliveries(stack.principal(), endpoint.id, 10, None)


def test_one_delivery_is_found_through_its_own_endpoint_only(
    stack: MemoryStack, admin: Principal
) -> None:
    endpoint = stack.endpoint(admin)
    other = stack.endpoint(admin, "https://hooks.example/other")
    [delivery_id] = _deliveries(stack, admin, endpoint.id, 1)
    view = stack.webhooks.delivery(admin, endpoint.id, delivery_id)
    assert view.id == delivery_id and view.attempt_log == [] and view.status == "pending"
    for endpoint_id, wanted in [
        (other.id, delivery_id),
        (endpoint.id, "nope"),
        (endpoint.id, new_id("dlv")),
        (endpoint.id, delivery_id.replace("dlv_", "whe_")),
    ]:
        with pytest.raises(NotFound) as missing:
            stack.webhooks.delivery(admin, endpoint_id, wanted)
        assert str(missing.value) == f"no delivery {wanted}"
    with pytest.raises(NotFound):
        stack.webhooks.delivery(stack.principal(), endpoint.id, delivery_id)


def test_redeliver_gives_a_failed_delivery_one_more_attempt_now(
    stack: MemoryStack, admin: Principal
) -> None:
    endpoint = stack.endpoint(admin)
    stack.webhooks.send_test(admin, endpoint.id, "req-9")
    [delivery_id] = [d.id for d in stack.webhooks.deliveries(admin, endpoint.id, 10, None).items]
    stack.set_rows(Delivery, delivery_id, status="failed", next_attempt_at=None, schedule_step=1)
    stack.publisher.published.clear()
    view = stack.webhooks.redeliver(admin, endpoint.id, delivery_id)
    stored = stack.delivery(delivery_id)
    assert view.id == delivery_id and view.attempt_log == []
    assert stored.status == "pending" and stored.schedule_step == len(SCHEDULE)
    assert stored.next_attempt_at is not None and stored.published_at == stored.next_attempt_at
    assert stack.publisher.published == [DeliverWebhook(delivery_id, "req-9")]
    audit = stack.audit(admin.tenant_id)[-1]
    assert (audit.action, audit.target_type, audit.target_id) == (
        "webhook_delivery.redeliver",
        "webhook_delivery",
        delivery_id,
    )


def test_redeliver_retries_a_race_a_few_times_then_says_conflict(
    stack: MemoryStack, admin: Principal, monkeypatch: pytest.MonkeyPatch
) -> None:
    endpoint = stack.endpoint(admin)
    [delivery_id] = _deliveries(stack, admin, endpoint.id, 1)
    real = stack.webhooks._redeliver
    calls: list[int] = []

    def racing(*args: str) -> DeliveryView:
        calls.append(1)
        if len(calls) < webhooks_module.RACE_RETRIES:
            raise StaleDataError("a worker changed it")
        return real(*args)

    monkeypatch.setattr(stack.webhooks, "_redeliver", racing)
    assert stack.webhooks.redeliver(admin, endpoint.id, delivery_id).id == delivery_id
    assert len(calls) == webhooks_module.RACE_RETRIES == 5

    def always(*args: str) -> DeliveryView:
        raise StaleDataError("a worker changed it")

    monkeypatch.setattr(stack.webhooks, "_redeliver", always)
    with pytest.raises(Conflict) as conflict:
        stack.webhooks.redeliver(admin, endpoint.id, delivery_id)
    assert str(conflict.value) == f"delivery {delivery_id} is changing too fast; try again"


def test_a_delivery_view_reads_as_the_delivery() -> None:
    delivery = Delivery(id="dlv_x", status="pending")
    view = DeliveryView(delivery, [])
    assert view.id == "dlv_x" and view.pending is True and view.attempt_log == []
    with pytest.raises(AttributeError):
        _ = view.no_such_field
