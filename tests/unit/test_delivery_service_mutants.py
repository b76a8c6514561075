"""``DeliveryService`` over the real unit of work (SQLite in memory): which deliveries are taken,
what a taken one sends (signed as Standard Webhooks says), and what each answer leads to."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import delete, text
from standardwebhooks import Webhook

from domain.auth import Principal
from domain.services import delivery as delivery_module
from domain.services.delivery import Outcome, Outgoing
from domain.webhooks.model import Delivery, Endpoint, Event
from domain.webhooks.repository import WebhookRepository
from tests.unit.memory_stack import SCHEDULE, MemoryStack

URL = "https://hooks.example/a"


@pytest.fixture
def stack() -> MemoryStack:
    return MemoryStack()


@pytest.fixture
def admin(stack: MemoryStack) -> Principal:
    return stack.principal()


def pending(stack: MemoryStack, admin: Principal, url: str = URL, request_id: str | None = None):
    """A made endpoint, its secret, and one pending delivery to it (due now)."""
    made = stack.webhooks.create(admin, {"url": url})
    stack.webhooks.send_test(admin, made.endpoint.id, request_id)
    [view] = stack.webhooks.deliveries(admin, made.endpoint.id, 1, None).items
    return made.endpoint, made.secret, view.id


def ok(code: int | None = 200, **fields: object) -> Outcome:
    values: dict[str, object] = {
        "status_code": code,
        "duration_ms": 40,
        "excerpt": "ok",
        "error": None,
        "retry_after": None,
    }
    values.update(fields)
    return Outcome(**values)  # type: ignore[arg-type]


def test_final_step_is_the_length_of_the_schedule(stack: MemoryStack) -> None:
    assert stack.container.deliveries.final_step == len(SCHEDULE) == 3


def test_a_claim_takes_the_attempt_and_signs_the_event_body(
    stack: MemoryStack, admin: Principal
) -> None:
    _endpoint, secret, delivery_id = pending(stack, admin, request_id="req-7")
    outgoing = stack.container.deliveries.claim(delivery_id)
    assert outgoing is not None
    with stack.uow() as uow:
        stored = uow.webhooks.delivery_unscoped(delivery_id)
        assert stored is not None
        event = uow.session.get(Event, stored.event_id)
        assert event is not None
    assert outgoing.delivery_id == delivery_id and outgoing.url == URL
    assert outgoing.body == event.body.encode()
    assert stored.claim_token == outgoing.token and len(outgoing.token) == 32
    assert stored.in_flight_until is not None and stored.updated_at is not None
    # held for the request's time and 20 s more
    assert stored.in_flight_until - stored.updated_at == timedelta(seconds=10.0 + 20)
    headers = outgoing.headers
    assert headers["Content-Type"] == "application/json"
    assert headers["webhook-id"] == event.id and headers["X-Request-Id"] == "req-7"
    assert abs(int(headers["webhook-timestamp"]) - datetime.now(UTC).timestamp()) < 60
    assert set(headers) == {
        "Content-Type",
        "webhook-id",
        "webhook-timestamp",
        "webhook-signature",
        "X-Request-Id",
    }
    Webhook(secret).verify(outgoing.body, headers)  # raises if the signature is wrong


def test_a_claim_without_a_request_id_sends_no_request_id_header(
    stack: MemoryStack, admin: Principal
) -> None:
    _, _, delivery_id = pending(stack, admin)
    outgoing = stack.container.deliveries.claim(delivery_id)
    assert outgoing is not None and "X-Request-Id" not in outgoing.headers


def test_during_a_rotation_both_secrets_sign(stack: MemoryStack, admin: Principal) -> None:
    endpoint, old, delivery_id = pending(stack, admin)
    new = stack.webhooks.rotate_secret(admin, endpoint.id).secret
    outgoing = stack.container.deliveries.claim(delivery_id)
    assert outgoing is not None
    assert len(outgoing.headers["webhook-signature"].split(" ")) == 2
    Webhook(old).verify(outgoing.body, outgoing.headers)
    Webhook(new).verify(outgoing.body, outgoing.headers)


def test_a_delivery_is_claimed_once_and_only_when_due(stack: MemoryStack, admin: Principal) -> None:
    _, _, delivery_id = pending(stack, admin)
    service = stack.container.deliveries
    assert service.claim("dlv_unknown") is None
    stack.set_rows(Delivery, delivery_id, next_attempt_at=datetime.now(UTC) + timedelta(hours=1))
    assert service.claim(delivery_id) is None
    stack.set_rows(Delivery, delivery_id, next_attempt_at=None)
    assert service.claim(delivery_id) is None
    stack.set_rows(Delivery, delivery_id, next_attempt_at=datetime.now(UTC) - timedelta(seconds=1))
    assert service.claim(delivery_id) is not None
    assert service.claim(delivery_id) is None  # in flight now
    stack.set_rows(Delivery, delivery_id, in_flight_until=datetime.now(UTC) - timedelta(seconds=1))
    assert service.claim(delivery_id) is not None  # its hold lapsed: taken again
    stack.set_rows(Delivery, delivery_id, status="succeeded", in_flight_until=None)
    assert service.claim(delivery_id) is None


def test_a_delivery_to_a_disabled_endpoint_fails_without_a_request(
    stack: MemoryStack, admin: Principal
) -> None:
    endpoint, _, delivery_id = pending(stack, admin)
    stack.set_rows(Endpoint, endpoint.id, enabled=False)
    assert stack.container.deliveries.claim(delivery_id) is None
    stored = stack.delivery(delivery_id)
    assert stored.status == "failed" and stored.next_attempt_at is None
    assert stored.claim_token is None


def test_a_delivery_whose_event_is_gone_fails(stack: MemoryStack, admin: Principal) -> None:
    _, _, delivery_id = pending(stack, admin)
    event_id = stack.delivery(delivery_id).event_id
    with stack.uow() as uow:  # behind the foreign key's back: cascading would take the delivery
        uow.session.execute(text("PRAGMA foreign_keys=OFF"))
        uow.session.execute(delete(Event).where(Event.id == event_id))
        uow.session.commit()
        uow.session.execute(text("PRAGMA foreign_keys=ON"))
    assert stack.container.deliveries.claim(delivery_id) is None
    assert stack.delivery(delivery_id).status == "failed"


def test_an_endpoint_with_enough_in_flight_defers_the_next(
    stack: MemoryStack, admin: Principal
) -> None:
    endpoint, _, _first = pending(stack, admin)
    for _ in range(delivery_module.MAX_IN_FLIGHT_PER_ENDPOINT):
        stack.webhooks.send_test(admin, endpoint.id, None)
    ids = [d.id for d in stack.webhooks.deliveries(admin, endpoint.id, 100, None).items]
    assert len(ids) == delivery_module.MAX_IN_FLIGHT_PER_ENDPOINT + 1 == 5
    service = stack.container.deliveries
    taken = [service.claim(d) for d in ids]
    assert [t is not None for t in taken] == [True, True, True, True, False]
    deferred = stack.delivery(ids[-1])
    assert deferred.status == "pending" and deferred.published_at is None
    assert deferred.claim_token is None and deferred.next_attempt_at is not None
    assert deferred.next_attempt_at - deferred.updated_at == timedelta(seconds=1.0)
    # One of the four ends: the fifth may go.
    first_taken = taken[0]
    assert first_taken is not None
    service.record(first_taken, ok())
    stack.set_rows(Delivery, ids[-1], next_attempt_at=datetime.now(UTC) - timedelta(seconds=1))
    assert service.claim(ids[-1]) is not None


def claimed(stack: MemoryStack, admin: Principal) -> tuple[Endpoint, Outgoing]:
    endpoint, _, delivery_id = pending(stack, admin)
    outgoing = stack.container.deliveries.claim(delivery_id)
    assert outgoing is not None
    return endpoint, outgoing


def test_a_2xx_succeeds_and_clears_the_endpoints_failing_streak(
    stack: MemoryStack, admin: Principal
) -> None:
    endpoint, outgoing = claimed(stack, admin)
    stack.set_rows(Endpoint, endpoint.id, failing_since=datetime.now(UTC) - timedelta(days=1))
    stack.container.deliveries.record(outgoing, ok(204, excerpt="x" * 2000, duration_ms=1500))
    stored = stack.delivery(outgoing.delivery_id)
    assert stored.status == "succeeded" and stored.attempts == 1
    assert stored.next_attempt_at is None and stored.claim_token is None
    assert stored.in_flight_until is None
    assert stack.stored_endpoint(endpoint.id).failing_since is None
    view = stack.webhooks.delivery(admin, endpoint.id, outgoing.delivery_id)
    [attempt] = view.attempt_log
    assert attempt.status_code == 204 and attempt.duration_ms == 1500
    assert attempt.response_excerpt == "x" * 1024 and attempt.error is None
    # the attempt is dated when the request started
    assert timedelta(seconds=1.4) <= stored.updated_at - attempt.at <= timedelta(seconds=1.6)


def test_an_error_is_kept_cut_to_1000_characters(stack: MemoryStack, admin: Principal) -> None:
    endpoint, outgoing = claimed(stack, admin)
    stack.container.deliveries.record(outgoing, ok(None, error="e" * 1500, excerpt=""))
    [attempt] = stack.webhooks.delivery(admin, endpoint.id, outgoing.delivery_id).attempt_log
    assert attempt.error == "e" * 1000 and attempt.status_code is None


def test_an_empty_error_is_kept_as_none(stack: MemoryStack, admin: Principal) -> None:
    endpoint, outgoing = claimed(stack, admin)
    stack.container.deliveries.record(outgoing, ok(500, error=""))
    [attempt] = stack.webhooks.delivery(admin, endpoint.id, outgoing.delivery_id).attempt_log
    assert attempt.error is None


def test_410_fails_the_delivery_and_disables_the_endpoint(
    stack: MemoryStack, admin: Principal
) -> None:
    endpoint, outgoing = claimed(stack, admin)
    stack.container.deliveries.record(outgoing, ok(410))
    assert stack.delivery(outgoing.delivery_id).status == "failed"
    stored = stack.stored_endpoint(endpoint.id)
    assert stored.enabled is False and stored.disabled_reason == "the endpoint answered 410 Gone"


@pytest.mark.parametrize("code", [None, 400, 404, 429, 500, 503, 301, 199])
def test_another_answer_is_retried_on_the_schedule_with_jitter(
    stack: MemoryStack, admin: Principal, code: int | None
) -> None:
    endpoint, outgoing = claimed(stack, admin)
    stack.container.deliveries.record(outgoing, ok(code))
    stored = stack.delivery(outgoing.delivery_id)
    assert stored.status == "pending" and stored.schedule_step == 1 and stored.attempts == 1
    assert stored.published_at is None and stored.claim_token is None
    assert stored.in_flight_until is None and stored.next_attempt_at is not None
    wait = (stored.next_attempt_at - stored.updated_at).total_seconds()
    assert SCHEDULE[0] * 0.8 <= wait <= SCHEDULE[0] * 1.2
    assert stack.stored_endpoint(endpoint.id).failing_since == stored.updated_at


def test_the_jitter_is_twenty_percent_either_way(
    stack: MemoryStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[tuple[float, float]] = []

    def uniform(low: float, high: float) -> float:
        seen.append((low, high))
        return high

    monkeypatch.setattr(random, "uniform", uniform)
    delay = stack.container.deliveries._delay(1, ok(500))
    assert seen == [(0.8, 1.2)] and delay == timedelta(seconds=SCHEDULE[1] * 1.2)


@pytest.mark.parametrize(
    ("code", "retry_after", "expected"),
    [
        (429, 1000.0, timedelta(seconds=1000)),
        (500, 1000.0, timedelta(seconds=1000)),
        (503, 10**7, timedelta(days=1)),  # capped
        (400, 1000.0, None),  # only 429 and 5xx may ask to wait
        (429, 1.0, None),  # a shorter wait than the schedule's is not taken
        (429, None, None),
        (429, 0.0, None),
    ],
)
def test_a_longer_retry_after_wins_on_429_and_5xx(
    stack: MemoryStack, code: int, retry_after: float | None, expected: timedelta | None
) -> None:
    random.seed(1)
    delay = stack.container.deliveries._delay(0, ok(code, retry_after=retry_after))
    assert delay is not None
    if expected is None:
        assert timedelta(seconds=8) <= delay <= timedelta(seconds=12)
    else:
        assert delay == expected


def test_the_last_step_of_the_schedule_fails_the_delivery(
    stack: MemoryStack, admin: Principal
) -> None:
    _endpoint, outgoing = claimed(stack, admin)
    stack.set_rows(Delivery, outgoing.delivery_id, schedule_step=len(SCHEDULE))
    stack.container.deliveries.record(outgoing, ok(500))
    stored = stack.delivery(outgoing.delivery_id)
    assert stored.status == "failed" and stored.next_attempt_at is None
    assert stack.container.deliveries._delay(len(SCHEDULE), ok(500)) is None
    assert stack.container.deliveries._delay(len(SCHEDULE) - 1, ok(500)) is not None


def test_a_refused_url_fails_at_once(stack: MemoryStack, admin: Principal) -> None:
    _endpoint, outgoing = claimed(stack, admin)
    stack.container.deliveries.record(outgoing, ok(None, error="refused", refused=True))
    stored = stack.delivery(outgoing.delivery_id)
    assert stored.status == "failed" and stored.schedule_step == 0


def test_an_answer_for_a_taken_back_or_deleted_delivery_is_dropped(
    stack: MemoryStack, admin: Principal
) -> None:
    endpoint, outgoing = claimed(stack, admin)
    stale = Outgoing(outgoing.delivery_id, "another-token", URL, b"", {})
    stack.container.deliveries.record(stale, ok())
    stored = stack.delivery(outgoing.delivery_id)
    assert stored.status == "pending" and stored.attempts == 0
    assert stack.webhooks.delivery(admin, endpoint.id, stored.id).attempt_log == []
    gone = Outgoing("dlv_00000000000000000000000000", outgoing.token, URL, b"", {})
    stack.container.deliveries.record(gone, ok())  # nothing to record, nothing raised


def test_an_answer_after_the_endpoint_was_deleted_is_still_recorded(
    stack: MemoryStack, admin: Principal, monkeypatch: pytest.MonkeyPatch
) -> None:
    endpoint, outgoing = claimed(stack, admin)
    monkeypatch.setattr(WebhookRepository, "locked_endpoint", lambda self, _id: None)
    stack.container.deliveries.record(outgoing, ok(500))
    stored = stack.delivery(outgoing.delivery_id)
    assert stored.schedule_step == 1 and stored.attempts == 1
    assert stack.stored_endpoint(endpoint.id).failing_since is None  # no endpoint was seen
    stack.set_rows(Delivery, stored.id, claim_token=outgoing.token)
    stack.container.deliveries.record(outgoing, ok(410))  # no endpoint to disable: retried
    assert stack.delivery(stored.id).schedule_step == 2
    stack.set_rows(Delivery, stored.id, claim_token=outgoing.token)
    stack.container.deliveries.record(outgoing, ok(200))
    assert stack.delivery(stored.id).status == "succeeded"


def test_an_endpoint_failing_for_five_days_is_disabled(
    stack: MemoryStack, admin: Principal
) -> None:
    endpoint, outgoing = claimed(stack, admin)
    stack.set_rows(Endpoint, endpoint.id, failing_since=datetime.now(UTC) - timedelta(days=5))
    stack.container.deliveries.record(outgoing, ok(500))
    stored = stack.stored_endpoint(endpoint.id)
    assert stored.enabled is False
    assert stored.disabled_reason == "deliveries have failed for 5 days"


@pytest.mark.parametrize("code", [199, 300, 301])
def test_only_a_2xx_answer_is_a_success(stack: MemoryStack, admin: Principal, code: int) -> None:
    _endpoint, outgoing = claimed(stack, admin)
    stack.container.deliveries.record(outgoing, ok(code))
    stored = stack.delivery(outgoing.delivery_id)
    assert stored.status == "pending" and stored.next_attempt_at is not None


def test_each_attempt_is_counted(stack: MemoryStack, admin: Principal) -> None:
    _endpoint, outgoing = claimed(stack, admin)
    stack.container.deliveries.record(outgoing, ok(503))
    stack.set_rows(Delivery, outgoing.delivery_id, next_attempt_at=datetime.now(UTC))
    again = stack.container.deliveries.claim(outgoing.delivery_id)
    assert again is not None
    stack.container.deliveries.record(again, ok(503))
    assert stack.delivery(outgoing.delivery_id).attempts == 2
