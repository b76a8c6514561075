"""The scheduler's passes and long-poll waiting, against real PostgreSQL."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

from domain.auth import Principal
from domain.commands import SubmitJob
from domain.model import Role
from hopper.bootstrap import Container
from hopper.notifications import PostgresListener
from tests.factories import TenantKeys


def principal(tenant: TenantKeys) -> Principal:
    return Principal(tenant.tenant_id, "key_test", Role.SUBMITTER)


def finish(container: Container, job_id: str, days_ago: float = 0) -> None:
    claim = container.execution.claim(job_id, "test")
    assert claim is not None
    container.execution.succeed(claim, {"message": "x"})
    if days_ago:
        with container.uow() as uow:
            job = uow.jobs.get_unscoped(job_id)
            job.finished_at = uow.now() - timedelta(days=days_ago)
            uow.commit()


def test_purge_deletes_only_finished_jobs_past_retention(
    container: Container, tenant: TenantKeys
) -> None:
    who = principal(tenant)
    old, recent, waiting = container.jobs.submit(
        who, [SubmitJob("echo", {"message": "x"})] * 3, batch=True
    )
    finish(container, old.id, days_ago=31)
    finish(container, recent.id, days_ago=29)
    while container.scheduling.purge(batch=50):
        pass
    with container.uow() as uow:
        assert uow.jobs.get_unscoped(old.id) is None
        assert uow.jobs.attempts(old.id) == []
        assert uow.jobs.get_unscoped(recent.id) is not None
        assert uow.jobs.get_unscoped(waiting.id) is not None


def test_a_long_poll_wakes_on_the_notification_of_the_commit(
    container: Container, tenant: TenantKeys
) -> None:
    who = principal(tenant)
    (job,) = container.jobs.submit(who, [SubmitJob("echo", {"message": "x"})])
    assert isinstance(container.waiter, PostgresListener)
    finished_at: list[float] = []

    def finish_soon() -> None:
        time.sleep(1.0)
        finish(container, job.id)
        finished_at.append(time.monotonic())

    threading.Thread(target=finish_soon).start()
    started = time.monotonic()
    seen = container.jobs.get(who, job.id, wait=10)
    answered = time.monotonic()
    assert seen.status == "succeeded"
    assert answered - started < 5
    assert answered - finished_at[0] < 1.0, "woken late: polling, not a notification?"


def test_a_long_poll_without_an_end_answers_after_its_wait(
    container: Container, tenant: TenantKeys
) -> None:
    who = principal(tenant)
    (job,) = container.jobs.submit(who, [SubmitJob("echo", {"message": "x"}, run_at=None)])
    with container.uow() as uow:  # nobody will run it
        uow.jobs.get_unscoped(job.id).run_at = uow.now() + timedelta(days=1)
        uow.commit()
    started = time.monotonic()
    assert container.jobs.get(who, job.id, wait=1).status == "queued"
    assert 0.9 < time.monotonic() - started < 3


def test_long_polls_past_capacity_answer_at_once(container: Container, tenant: TenantKeys) -> None:
    listener = PostgresListener(container.settings.database_url, capacity=1)
    holding = threading.Event()
    release = threading.Event()

    def hold() -> None:
        with listener.watch("job_a") as watch:
            assert watch is not None
            holding.set()
            release.wait(5)

    holder = threading.Thread(target=hold)
    holder.start()
    assert holding.wait(5)
    with listener.watch("job_b") as second:
        assert second is None
    release.set()
    holder.join()
    with listener.watch("job_c") as third:
        assert third is not None
    listener.stop()


def test_purge_removes_old_idempotency_records_and_audit_events(
    container: Container, tenant: TenantKeys
) -> None:
    from domain.model import AuditEvent, IdempotencyRecord

    with container.uow() as uow:
        now = uow.now()
        uow.add(
            IdempotencyRecord(
                tenant_id=tenant.tenant_id,
                route="/v1/jobs",
                key="old",
                request_hash="h",
                state="done",
                created_at=now - timedelta(hours=25),
                updated_at=now,
            ),
            IdempotencyRecord(
                tenant_id=tenant.tenant_id,
                route="/v1/jobs",
                key="new",
                request_hash="h",
                state="done",
                created_at=now,
                updated_at=now,
            ),
            AuditEvent(
                id="aud_01aaaaaaaaaaaaaaaaaaaaaaaa",
                tenant_id=tenant.tenant_id,
                at=now - timedelta(days=366),
                action="job.cancel",
                target_type="job",
                target_id="job_x",
                details={},
            ),
        )
        uow.commit()
    while container.scheduling.purge(batch=50):
        pass
    with container.uow() as uow:
        keys = {
            r.key
            for r in uow.session.query(IdempotencyRecord).filter_by(tenant_id=tenant.tenant_id)
        }
        old_audit = uow.session.get(AuditEvent, "aud_01aaaaaaaaaaaaaaaaaaaaaaaa")
        recent_audits = uow.session.query(AuditEvent).filter_by(tenant_id=tenant.tenant_id).count()
    assert keys == {"new"}
    assert old_audit is None
    assert recent_audits == 3  # the tenant's three key creations, this minute, stay
