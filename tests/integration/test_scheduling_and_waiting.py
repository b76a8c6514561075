"""The scheduler's passes and long-poll waiting, against real PostgreSQL."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from domain.auth import Principal
from domain.commands import SubmitJob
from domain.model import Role
from domain.ports import Watch
from domain.services.jobs import JobService
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


# Far longer than a notification takes: a long-poll answered within half of it was woken by the
# commit's NOTIFY, not by a waiter looking again.
RECHECK_WHEN_DEAF = 30.0


class Watched:
    """A listener that tells the test when a long-poll has read its job and begun to wait. The
    job must finish after that, or the first read already sees it finished and proves nothing."""

    def __init__(self, listener: PostgresListener) -> None:
        self._listener = listener
        self.waiting = threading.Event()

    @contextmanager
    def watch(self, job_id: str) -> Iterator[Watch | None]:
        with self._listener.watch(job_id) as watch:
            yield None if watch is None else _SaysWhenWaiting(watch, self.waiting)


class _SaysWhenWaiting:
    def __init__(self, watch: Watch, waiting: threading.Event) -> None:
        self._watch = watch
        self._waiting = waiting

    def wait(self, timeout: float) -> None:
        self._waiting.set()
        self._watch.wait(timeout)


def test_a_long_poll_wakes_on_the_notification_of_the_commit(
    container: Container, tenant: TenantKeys
) -> None:
    assert isinstance(container.waiter, PostgresListener)  # what the web app waits with
    listener = PostgresListener(
        container.settings.database_url, capacity=2, recheck_when_deaf=RECHECK_WHEN_DEAF
    )
    watched = Watched(listener)
    jobs = JobService(container.uow, container.registry, watched)
    who = principal(tenant)
    (job,) = container.jobs.submit(who, [SubmitJob("echo", {"message": "x"})])
    finished_at: list[float] = []

    def finish_once_waiting() -> None:
        if watched.waiting.wait(30):
            finish(container, job.id)
            finished_at.append(time.monotonic())

    try:
        # Listening before the long-poll begins: else it would look again instead of waiting.
        assert listener.ready(30), "the listener never started listening"
        finisher = threading.Thread(target=finish_once_waiting)
        finisher.start()
        seen = jobs.get(who, job.id, wait=RECHECK_WHEN_DEAF)
        answered = time.monotonic()
        finisher.join(30)
    finally:
        listener.stop()
    assert seen.status == "succeeded"
    assert finished_at, "the job was never finished while the long-poll waited"
    late = answered - finished_at[0]
    assert late < RECHECK_WHEN_DEAF / 2, f"answered {late:.1f}s after the end: no notification"


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
    # At least its wait (the deadline is set after ``started``); the ceiling only catches a hang.
    assert 1.0 <= time.monotonic() - started < 15


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
