"""The real ``UnitOfWork`` over SQLite in memory: commands go out only after the commit, a job's
transitions write their webhook events in the same transaction, a failed publish leaves the rows
for the scheduler, and a lost database is ``StorageUnavailable``. (Its PostgreSQL-only parts, the
database clock and NOTIFY, are in tests/integration/test_unit_of_work_postgres.py.)"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError, StatementError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from domain.auth import Principal
from domain.errors import StorageUnavailable
from domain.model import Tenant
from domain.ports import DeliverWebhook, Dispatch, RunJob
from domain.repositories import JobRepository
from domain.unit_of_work import UnitOfWork, _connection_problem
from domain.webhooks.model import Delivery, Event
from tests.unit.builders import echo
from tests.unit.memory_stack import MemoryStack


@pytest.fixture
def stack() -> MemoryStack:
    return MemoryStack()


@pytest.fixture
def admin(stack: MemoryStack) -> Principal:
    return stack.principal()


def test_now_is_fixed_for_the_transaction_and_in_utc(stack: MemoryStack) -> None:
    with stack.uow() as uow:
        first = uow.now()
        assert first.tzinfo is UTC
        assert abs(first - datetime.now(UTC)) < timedelta(seconds=5)
        assert uow.now() is first
    with stack.uow() as uow:
        assert uow.now() >= first


def test_a_unit_of_work_is_fresh_each_time_it_is_entered(stack: MemoryStack) -> None:
    uow = stack.uow()
    with uow:
        first_now = uow.now()
        uow.publish_after_commit(RunJob("job_1", "default", "normal"))
        first_session = uow.session
    with uow:
        assert uow.session is not first_session
        assert uow._pending == [] and uow._now is None
        assert uow.now() >= first_now
        uow.commit()
    assert stack.publisher.published == []
    for name in ("jobs", "tenants", "keys", "webhooks", "records"):
        assert getattr(uow, name).session is uow.session


def test_commands_are_published_once_and_only_after_the_commit(stack: MemoryStack) -> None:
    commands = [RunJob("job_1", "default", "normal"), DeliverWebhook("dlv_1", "req")]
    uow = stack.uow()
    with uow:
        for command in commands:
            uow.publish_after_commit(command)
        assert stack.publisher.published == []
        uow.commit()
        assert stack.publisher.published == commands
        uow.commit()  # nothing pending any more
    assert stack.publisher.published == commands


def test_rollback_drops_the_pending_commands_and_the_changes(
    stack: MemoryStack, admin: Principal
) -> None:
    with stack.uow() as uow:
        uow.publish_after_commit(RunJob("job_1", "default", "normal"))
        tenant = uow.tenants.get(admin.tenant_id)
        assert tenant is not None
        tenant.name = "renamed"
        uow.session.flush()
        uow.rollback()
        uow.commit()
    assert stack.publisher.published == []
    with stack.uow() as uow:
        assert uow.tenants.get(admin.tenant_id).name != "renamed"  # type: ignore[union-attr]


def test_leaving_without_a_commit_changes_nothing(stack: MemoryStack, admin: Principal) -> None:
    with stack.uow() as uow:
        uow.tenants.get(admin.tenant_id).name = "renamed"  # type: ignore[union-attr]
        uow.add(*[])
    with stack.uow() as uow:
        assert uow.tenants.get(admin.tenant_id).name != "renamed"  # type: ignore[union-attr]


def test_add_takes_several_objects(stack: MemoryStack) -> None:
    with stack.uow() as uow:
        t1 = Tenant(id="ten_" + "1" * 26, name="one", created_at=uow.now())
        t2 = Tenant(id="ten_" + "2" * 26, name="two", created_at=uow.now())
        uow.add(t1, t2)
        uow.commit()
    with stack.uow() as uow:
        assert uow.tenants.by_name("one") is not None and uow.tenants.by_name("two") is not None


def test_a_transition_writes_its_event_and_deliveries_in_the_same_commit(
    stack: MemoryStack, admin: Principal
) -> None:
    wanted = stack.endpoint(admin, "https://hooks.example/all")
    stack.endpoint(admin, "https://hooks.example/other", event_types=["job.failed"])
    job = stack.container.jobs.submit(admin, [echo()], "req-5")[0]
    stack.publisher.published.clear()
    claim = stack.container.execution.claim(job.id, "host:1")
    assert claim is not None
    with stack.uow() as uow:
        [event] = uow.session.scalars(select(Event).where(Event.job_id == job.id)).all()
        [delivery] = uow.session.scalars(select(Delivery).where(Delivery.event_id == event.id))
    assert event.type == "job.started" and event.request_id == "req-5"
    assert delivery.endpoint_id == wanted.id
    assert stack.publisher.published == [Dispatch("default"), DeliverWebhook(delivery.id, "req-5")]
    with stack.uow() as uow:  # the events were taken: a later commit writes none again
        uow.jobs.get(admin.tenant_id, job.id)
        uow.commit()
    with stack.uow() as uow:
        assert len(uow.session.scalars(select(Event)).all()) == 1


def test_no_event_is_written_when_no_endpoint_wants_it(
    stack: MemoryStack, admin: Principal
) -> None:
    stack.endpoint(admin, event_types=["job.failed"])
    job = stack.container.jobs.submit(admin, [echo()])[0]
    stack.container.execution.claim(job.id, "host:1")
    with stack.uow() as uow:
        assert uow.session.scalars(select(Event)).all() == []


def test_commit_hooks_run_around_the_commit_in_order(stack: MemoryStack) -> None:
    calls: list[str] = []

    class Hook:
        def __init__(self, name: str) -> None:
            self.name = name

        def before_commit(self, session: object, now: Callable[[], datetime]) -> None:
            assert isinstance(now(), datetime)
            calls.append(f"before {self.name}")

        def after_commit(self) -> None:
            calls.append(f"after {self.name}")

    class Publisher:
        def publish(self, commands: list[object]) -> None:
            calls.append("publish")

    uow = UnitOfWork(stack.container.session_factory, Publisher(), (Hook("a"), Hook("b")))  # type: ignore[arg-type]
    with uow:
        uow.publish_after_commit(RunJob("job_1", "default", "normal"))
        uow.commit()
    assert calls == ["before a", "before b", "after a", "after b", "publish"]


def test_a_refusing_hook_stops_the_commit(stack: MemoryStack, admin: Principal) -> None:
    class Refuse:
        def before_commit(self, session: object, now: Callable[[], datetime]) -> None:
            raise RuntimeError("no")

        def after_commit(self) -> None:
            raise AssertionError("not committed")

    uow = UnitOfWork(stack.container.session_factory, stack.publisher, (Refuse(),))
    with uow:
        uow.tenants.get(admin.tenant_id).name = "renamed"  # type: ignore[union-attr]
        uow.publish_after_commit(RunJob("job_1", "default", "normal"))
        with pytest.raises(RuntimeError):
            uow.commit()
    assert stack.publisher.published == []
    with stack.uow() as check:
        assert check.tenants.get(admin.tenant_id).name != "renamed"  # type: ignore[union-attr]


def test_a_failed_publish_leaves_the_rows_ready_at_once(
    stack: MemoryStack, admin: Principal
) -> None:
    endpoint = stack.endpoint(admin)
    job = stack.container.jobs.submit(admin, [echo()])[0]
    stack.publisher.broken = True
    assert stack.container.dispatch.dispatch() == 1  # chosen, then handed back
    stack.webhooks.send_test(admin, endpoint.id, None)
    [view] = stack.webhooks.deliveries(admin, endpoint.id, 1, None).items
    with stack.uow() as uow:
        stored = uow.jobs.get(admin.tenant_id, job.id)
        assert stored is not None and stored.status == "queued"
        assert stored.published_at is None
    assert stack.delivery(view.id).published_at is None
    # only the commands that failed: another job's publish stays
    stack.publisher.broken = False
    assert stack.container.dispatch.dispatch() == 1
    with stack.uow() as uow:
        assert uow.jobs.get(admin.tenant_id, job.id).published_at is not None  # type: ignore[union-attr]


def test_a_failed_publish_of_jobs_alone_touches_no_delivery(
    stack: MemoryStack, admin: Principal
) -> None:
    endpoint = stack.endpoint(admin)
    stack.webhooks.send_test(admin, endpoint.id, None)
    [view] = stack.webhooks.deliveries(admin, endpoint.id, 1, None).items
    job = stack.container.jobs.submit(admin, [echo()])[0]
    stack.publisher.broken = True
    assert stack.container.dispatch.dispatch() == 1
    assert stack.delivery(view.id).published_at is not None
    with stack.uow() as uow:
        assert uow.jobs.get(admin.tenant_id, job.id).published_at is None  # type: ignore[union-attr]


def test_a_database_error_while_marking_unpublished_is_swallowed(
    stack: MemoryStack, admin: Principal, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(self: JobRepository, job_ids: list[str]) -> None:
        raise DBAPIError("UPDATE", {}, Exception("gone"))

    job = stack.container.jobs.submit(admin, [echo()])[0]
    monkeypatch.setattr(JobRepository, "mark_unpublished", broken)
    stack.publisher.broken = True
    assert stack.container.dispatch.dispatch() == 1  # raises nothing
    with stack.uow() as uow:  # in flight until the republish threshold takes it for lost
        assert uow.jobs.get(admin.tenant_id, job.id).published_at is not None  # type: ignore[union-attr]


def test_a_lost_database_is_storage_unavailable(stack: MemoryStack) -> None:
    lost = OperationalError("SELECT 1", {}, Exception("server closed the connection"))
    for error in (
        lost,
        PoolTimeout("pool exhausted"),
        StatementError("bad", "SELECT 1", {}, lost),
    ):
        with pytest.raises(StorageUnavailable) as unavailable, stack.uow():
            raise error
        assert unavailable.value.__cause__ is error
        assert str(unavailable.value) == "the database is unavailable"


def test_other_errors_pass_through_the_unit_of_work(stack: MemoryStack) -> None:
    for error in (
        ValueError("mine"),
        IntegrityError("INSERT", {}, Exception("duplicate")),
        StatementError("bad", "SELECT 1", {}, ValueError("not a connection problem")),
    ):
        with pytest.raises(type(error)), stack.uow():
            raise error


def test_what_counts_as_a_connection_problem() -> None:
    lost = OperationalError("SELECT 1", {}, Exception("gone"))
    assert _connection_problem(lost) is True
    assert _connection_problem(StatementError("x", "s", {}, lost)) is True
    assert _connection_problem(StatementError("x", "s", {}, ValueError())) is False
    assert _connection_problem(ValueError()) is False


def test_a_broken_close_is_not_an_error(
    stack: MemoryStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    uow = stack.uow()
    with uow:
        monkeypatch.setattr(
            uow.session, "close", lambda: (_ for _ in ()).throw(DBAPIError("x", {}, Exception()))
        )
