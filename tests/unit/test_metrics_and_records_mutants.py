"""Over the real unit of work (SQLite in memory): the figures operators scrape (``MetricsService``),
keys and the audit log as admins read them (``AccessService``), and the scheduler's deliveries
and retention purge (``SchedulerService``)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from domain.auth import Principal
from domain.errors import NotFound
from domain.idempotency import Claim
from domain.ids import new_id
from domain.model import AuditEvent, IdempotencyRecord, Job, Role
from domain.ports import DeliverWebhook
from domain.queue_control.service import QueueView
from domain.queues import WAITING_REASONS
from domain.services.metrics import CACHE_SECONDS, MetricsService, StarvedQueue
from domain.services.scheduling import Retention, SchedulerService
from domain.webhooks.model import Delivery, Event
from tests.unit.builders import echo, sleep
from tests.unit.memory_stack import MemoryStack


@pytest.fixture
def stack() -> MemoryStack:
    return MemoryStack()


@pytest.fixture
def admin(stack: MemoryStack) -> Principal:
    return stack.principal()


def metrics(stack: MemoryStack) -> MetricsService:
    return stack.container.metrics


def submit(stack: MemoryStack, admin: Principal, command=None) -> Job:  # type: ignore[no-untyped-def]
    return stack.container.jobs.submit(admin, [command or echo()])[0]


class Consumers:
    def __init__(self, counts: dict[str, int] | None) -> None:
        self.counts = counts
        self.asked: list[list[str]] = []

    def consumers(self, queues: list[str]) -> dict[str, int] | None:
        self.asked.append(list(queues))
        return self.counts


# -- metrics ---------------------------------------------------------------------------------


def gauges(stack: MemoryStack) -> dict[str, QueueView]:
    metrics(stack)._cached = None  # each test reads afresh: the cache has its own test
    return {view.queue: view for view in metrics(stack).gauges().queues}


def waiting(view: QueueView) -> dict[str, int]:
    return {reason: n for reason, n in view.waiting.items() if n}


def test_no_jobs_every_queue_reads_zero(stack: MemoryStack) -> None:
    views = gauges(stack)
    assert sorted(views) == stack.container.job_queues()
    assert all(waiting(v) == {} and v.running == 0 for v in views.values())
    assert set(views["default"].waiting) == set(WAITING_REASONS)
    assert metrics(stack).gauges().pending_deliveries == 0


def test_figures_count_jobs_by_why_they_wait_and_running_per_queue(
    stack: MemoryStack, admin: Principal
) -> None:
    due = [submit(stack, admin) for _ in range(3)]
    submit(stack, admin, echo(run_at=datetime.now(UTC) + timedelta(hours=1)))
    retried = submit(stack, admin)
    stack.set_rows(Job, retried.id, attempts=1, run_at=datetime.now(UTC) + timedelta(minutes=1))
    long_job = submit(stack, admin, sleep(1))
    stack.set_rows(Job, due[0].id, run_at=datetime.now(UTC) - timedelta(seconds=100))
    stack.container.execution.claim(due[1].id, "host:1")
    stack.container.execution.claim(long_job.id, "host:1")
    views = gauges(stack)
    default = views["default"]
    assert waiting(default) == {"capacity": 2, "run_at": 1, "backoff": 1}
    assert default.running == 1
    assert 99 <= default.oldest_due_seconds <= 130
    assert long_job.queue != "default"
    assert (waiting(views[long_job.queue]), views[long_job.queue].running) == ({}, 1)
    assert views[long_job.queue].oldest_due_seconds == 0.0


def test_a_paused_queue_counts_its_due_jobs_as_paused_not_due(
    stack: MemoryStack, admin: Principal
) -> None:
    submit(stack, admin)
    later = submit(stack, admin, echo(run_at=datetime.now(UTC) + timedelta(hours=1)))
    stack.container.queue_control.pause(admin.tenant_id, "default")
    view = gauges(stack)["default"]
    assert waiting(view) == {"paused": 1, "run_at": 1}
    assert view.oldest_due_seconds == 0.0  # a paused job waits for the pause, not a worker
    assert metrics(stack).gauges().pauses == {"default": 1}
    assert later.status == "queued"


def test_the_figures_are_read_once_for_a_few_seconds(stack: MemoryStack, admin: Principal) -> None:
    first = metrics(stack).gauges()
    submit(stack, admin)
    assert metrics(stack).gauges() is first
    metrics(stack)._cached = (time.monotonic() - CACHE_SECONDS - 1, first)
    assert metrics(stack).gauges().queues != first.queues


def test_age_of_a_just_due_job_is_small_and_never_negative(
    stack: MemoryStack, admin: Principal
) -> None:
    submit(stack, admin)
    view = gauges(stack)["default"]
    assert waiting(view) == {"capacity": 1} and view.running == 0
    assert 0.0 <= view.oldest_due_seconds < 5


def test_starved_queues_are_those_with_due_work_and_no_consumer(
    stack: MemoryStack, admin: Principal
) -> None:
    submit(stack, admin)
    submit(stack, admin, sleep(1))
    long_queue = submit(stack, admin, sleep(1)).queue
    consumers = Consumers({"default": 2, long_queue: 0})
    assert metrics(stack).starved_queues(consumers) == [StarvedQueue(long_queue, 2)]
    assert consumers.asked == [sorted(["default", long_queue])]
    assert metrics(stack).starved_queues(Consumers({})) == [
        StarvedQueue("default", 1),
        StarvedQueue(long_queue, 2),
    ]


def test_nothing_due_asks_the_broker_nothing(stack: MemoryStack, admin: Principal) -> None:
    submit(stack, admin, echo(run_at=datetime.now(UTC) + timedelta(hours=1)))
    consumers = Consumers({})
    assert metrics(stack).starved_queues(consumers) == []
    assert consumers.asked == []


def test_a_broker_that_cannot_tell_starves_nothing(stack: MemoryStack, admin: Principal) -> None:
    submit(stack, admin)
    assert metrics(stack).starved_queues(Consumers(None)) == []


def test_due_deliveries_count_for_the_webhooks_queue(stack: MemoryStack, admin: Principal) -> None:
    endpoint = stack.endpoint(admin)
    for _ in range(2):
        stack.webhooks.send_test(admin, endpoint.id, None)
    ids = [d.id for d in stack.webhooks.deliveries(admin, endpoint.id, 10, None).items]
    later = datetime.now(UTC) + timedelta(hours=1)
    stack.webhooks.send_test(admin, endpoint.id, None)
    newest = stack.webhooks.deliveries(admin, endpoint.id, 1, None).items[0].id
    stack.set_rows(Delivery, newest, next_attempt_at=later)
    assert metrics(stack).starved_queues(Consumers({})) == [StarvedQueue("webhooks", 2)]
    metrics(stack)._cached = None
    assert metrics(stack).gauges().pending_deliveries == 3
    stack.set_rows(Delivery, ids[0], status="succeeded")
    metrics(stack)._cached = None
    assert metrics(stack).gauges().pending_deliveries == 2
    assert metrics(stack).starved_queues(Consumers({})) == [StarvedQueue("webhooks", 1)]
    assert metrics(stack).starved_queues(Consumers({"webhooks": 1})) == []


# -- keys and audit --------------------------------------------------------------------------


def test_keys_are_listed_newest_first_per_tenant(stack: MemoryStack, admin: Principal) -> None:
    access = stack.container.access
    made = [access.create_key(admin.tenant_id, f"k{n}", Role.READER).record.id for n in range(3)]
    stack.principal()  # another tenant, another key
    first = access.list_keys(admin, 2, None)
    assert [k.id for k in first.items] == [made[2], made[1]] and first.next_cursor
    rest = access.list_keys(admin, 10, first.next_cursor)
    assert [k.id for k in rest.items] == [made[0], admin.key_id] and rest.next_cursor is None


def test_revoking_a_key_stamps_it_once_and_audits_it(stack: MemoryStack, admin: Principal) -> None:
    access = stack.container.access
    key = access.create_key(admin.tenant_id, "ci", Role.SUBMITTER)
    access.revoke_key(admin, key.record.id)
    with stack.uow() as uow:
        revoked = uow.keys.get(admin.tenant_id, key.record.id)
        assert revoked is not None and revoked.revoked_at is not None
        first_stamp = revoked.revoked_at
    event = stack.audit(admin.tenant_id)[-1]
    assert (event.action, event.target_type, event.target_id) == (
        "api_key.revoke",
        "api_key",
        key.record.id,
    )
    access.revoke_key(admin, key.record.id)  # again: nothing changes, nothing audited
    with stack.uow() as uow:
        assert uow.keys.get(admin.tenant_id, key.record.id).revoked_at == first_stamp  # type: ignore[union-attr]
    assert len([e for e in stack.audit(admin.tenant_id) if e.action == "api_key.revoke"]) == 1
    with pytest.raises(Exception, match="revoked or expired"):
        access.authenticate(key.secret)


def test_revoking_another_tenants_or_a_malformed_key_is_not_found(
    stack: MemoryStack, admin: Principal
) -> None:
    other = stack.principal()
    for key_id in (other.key_id, "nope", new_id("key"), other.key_id.replace("key_", "ten_")):
        with pytest.raises(NotFound) as missing:
            stack.container.access.revoke_key(admin, key_id)
        assert str(missing.value) == f"no API key {key_id}"
    with stack.uow() as uow:
        assert uow.keys.get(other.tenant_id, other.key_id).revoked_at is None  # type: ignore[union-attr]


def test_audit_events_are_listed_newest_first_per_tenant(
    stack: MemoryStack, admin: Principal
) -> None:
    access = stack.container.access
    for n in range(3):
        access.create_key(admin.tenant_id, f"k{n}", Role.READER)
    stack.principal()
    everything = [e.id for e in reversed(stack.audit(admin.tenant_id))]
    first = access.audit_events(admin, 2, None)
    assert [e.id for e in first.items] == everything[:2] and first.next_cursor
    rest = access.audit_events(admin, 10, first.next_cursor)
    assert [e.id for e in rest.items] == everything[2:] and rest.next_cursor is None


# -- the scheduler's deliveries and purge ----------------------------------------------------


def test_due_deliveries_are_published_once_until_the_publish_is_stale(
    stack: MemoryStack, admin: Principal
) -> None:
    endpoint = stack.endpoint(admin)
    stack.webhooks.send_test(admin, endpoint.id, None)
    [view] = stack.webhooks.deliveries(admin, endpoint.id, 1, None).items
    scheduler = SchedulerService(stack.uow, republish_after_seconds=60)
    stack.publisher.published.clear()
    assert scheduler.publish_due_deliveries() == 0  # published when it was made
    stack.set_rows(Delivery, view.id, published_at=datetime.now(UTC) - timedelta(seconds=61))
    assert scheduler.publish_due_deliveries() == 1
    assert stack.publisher.published == [DeliverWebhook(view.id)]
    assert stack.delivery(view.id).published_at > datetime.now(UTC) - timedelta(seconds=5)  # type: ignore[operator]
    assert scheduler.publish_due_deliveries() == 0
    stack.set_rows(Delivery, view.id, published_at=None)
    assert scheduler.publish_due_deliveries(limit=1) == 1


def test_publish_due_deliveries_takes_at_most_the_limit(
    stack: MemoryStack, admin: Principal
) -> None:
    endpoint = stack.endpoint(admin)
    for _ in range(3):
        stack.webhooks.send_test(admin, endpoint.id, None)
    for view in stack.webhooks.deliveries(admin, endpoint.id, 10, None).items:
        stack.set_rows(Delivery, view.id, published_at=None)
    scheduler = SchedulerService(stack.uow)
    assert scheduler.publish_due_deliveries(limit=2) == 2
    assert scheduler.publish_due_deliveries(limit=2) == 1


def test_purge_deletes_what_is_past_each_retention(stack: MemoryStack, admin: Principal) -> None:
    now = datetime.now(UTC)
    retention = Retention(
        jobs=timedelta(days=2),
        events=timedelta(days=3),
        idempotency=timedelta(hours=5),
        audit=timedelta(days=7),
    )
    scheduler = SchedulerService(stack.uow, retention=retention)
    old_job, kept_job = submit(stack, admin), submit(stack, admin)
    for job in (old_job, kept_job):
        stack.container.jobs.cancel(admin, job.id)
    stack.set_rows(Job, old_job.id, finished_at=now - timedelta(days=2, minutes=1))
    stack.set_rows(Job, kept_job.id, finished_at=now - timedelta(days=1, hours=23))
    endpoint = stack.endpoint(admin)
    event_ids = [stack.webhooks.send_test(admin, endpoint.id, None) for _ in range(2)]
    stack.set_rows(Event, event_ids[0], created_at=now - timedelta(days=3, minutes=1))
    stack.set_rows(Event, event_ids[1], created_at=now - timedelta(days=2, hours=23))
    service = stack.container.idempotency
    for key, age in (("old", timedelta(hours=5, minutes=1)), ("new", timedelta(hours=4))):
        service.begin(Claim(admin.tenant_id, "POST /v1/jobs", key, admin.key_id), "h")
        with stack.uow() as uow:
            row = uow.session.get(IdempotencyRecord, (admin.tenant_id, "POST /v1/jobs", key))
            row.created_at = now - age  # type: ignore[union-attr]
            uow.commit()
    audit = stack.audit(admin.tenant_id)
    stack.set_rows(AuditEvent, audit[0].id, at=now - timedelta(days=7, minutes=1))
    stack.set_rows(AuditEvent, audit[1].id, at=now - timedelta(days=6, hours=23))

    assert scheduler.purge() == 4
    with stack.uow() as uow:
        assert uow.jobs.get_unscoped(old_job.id) is None
        assert uow.jobs.get_unscoped(kept_job.id) is not None
        assert uow.session.get(Event, event_ids[0]) is None
        assert uow.session.get(Event, event_ids[1]) is not None
        keys = set(uow.session.scalars(select(IdempotencyRecord.key)))
        assert keys == {"new"}
        audit_ids = set(uow.session.scalars(select(AuditEvent.id)))
        assert audit[0].id not in audit_ids and audit[1].id in audit_ids
    assert scheduler.purge() == 0


def test_purge_goes_one_small_batch_at_a_time(stack: MemoryStack, admin: Principal) -> None:
    scheduler = SchedulerService(stack.uow, retention=Retention(audit=timedelta(seconds=0)))
    for n in range(3):
        stack.container.access.create_key(admin.tenant_id, f"k{n}", Role.READER)
    with stack.uow() as uow:
        total = uow.session.scalar(select(func.count()).select_from(AuditEvent))
    with stack.uow() as uow:
        for event in uow.session.scalars(select(AuditEvent)):
            event.at = datetime.now(UTC) - timedelta(seconds=1)
        uow.commit()
    assert scheduler.purge(batch=2) == 2
    assert scheduler.purge(batch=2) == (total or 0) - 2
    assert scheduler.purge(batch=2) == 0


def test_default_retention_is_the_contracts() -> None:
    assert Retention() == Retention(
        jobs=timedelta(days=30),
        events=timedelta(days=30),
        idempotency=timedelta(hours=24),
        audit=timedelta(days=365),
    )


def test_every_kind_is_purged_in_batches(stack: MemoryStack, admin: Principal) -> None:
    old = datetime.now(UTC) - timedelta(days=400)
    jobs = stack.container.jobs.submit(admin, [echo(), echo()])
    for job in jobs:
        stack.container.jobs.cancel(admin, job.id)
        stack.set_rows(Job, job.id, finished_at=old)
    endpoint = stack.endpoint(admin)
    for event_id in [stack.webhooks.send_test(admin, endpoint.id, None) for _ in range(2)]:
        stack.set_rows(Event, event_id, created_at=old)
    for key in ("a", "b"):
        stack.container.idempotency.begin(Claim(admin.tenant_id, "r", key, admin.key_id), "h")
    with stack.uow() as uow:
        for row in uow.session.scalars(select(IdempotencyRecord)):
            row.created_at = old
        for event in uow.session.scalars(select(AuditEvent)):
            event.at = datetime.now(UTC)  # kept: only the other kinds are old
        uow.commit()
    scheduler = SchedulerService(stack.uow)
    assert scheduler.purge(batch=1) == 3  # one job, one event, one record
    assert scheduler.purge(batch=1) == 3
    assert scheduler.purge(batch=1) == 0
