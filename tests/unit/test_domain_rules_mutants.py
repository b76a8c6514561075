"""What the job model, the job and execution services and the access service say and record
beyond their state changes: the webhook events each transition emits, the audit details, the
errors clients read, the log events operators alert on. Over the real unit of work (SQLite in
memory) where the audit log or the outbox is involved."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import event
from sqlalchemy.orm.exc import StaleDataError
from structlog.testing import capture_logs

from domain.auth import Principal
from domain.errors import (
    AuthenticationFailed,
    Conflict,
    IllegalTransition,
    LeaseLost,
    NotFound,
    ValidationFailed,
)
from domain.ids import new_id
from domain.model import ApiKey, Job, Role
from domain.model.job import ErrorType
from domain.ports import Dispatch, RunJob
from domain.repositories import JobFilter
from domain.services.scheduling import Retention, SchedulerService, _lapse_error
from tests.unit.builders import NOW, echo, later, make_job, start
from tests.unit.fakes import FakeWiring
from tests.unit.memory_stack import MemoryStack


@pytest.fixture
def stack() -> MemoryStack:
    return MemoryStack()


@pytest.fixture
def admin(stack: MemoryStack) -> Principal:
    return stack.principal()


# -- the job model ---------------------------------------------------------------------------


def test_each_transition_emits_its_event_once() -> None:
    job = make_job()
    assert job.take_events() == []
    attempt = start(job)
    assert job.take_events() == ["job.started"]
    assert job.take_events() == []
    job.succeed(attempt, {"ok": True}, later(1))
    assert job.take_events() == ["job.succeeded"]

    failing = make_job(max_attempts=1)
    attempt = start(failing)
    failing.fail_attempt(attempt, {"type": "handler_error"}, later(1), retry_at=later(2))
    assert failing.take_events() == ["job.started", "job.failed"]

    retried = make_job(max_attempts=3)
    attempt = start(retried)
    retried.fail_attempt(attempt, {"type": "handler_error"}, later(1), retry_at=later(2))
    assert retried.take_events() == ["job.started"]  # back to queued: no event

    canceled = make_job()
    canceled.cancel(NOW)
    assert canceled.take_events() == ["job.canceled"]

    stopped = make_job()
    attempt = start(stopped)
    stopped.cancel(later(1))
    assert stopped.take_events() == ["job.started"]  # a request to stop: no event yet
    stopped.stop_canceled(attempt, later(2))
    assert stopped.take_events() == ["job.canceled"]
    assert attempt.error == {"type": "canceled", "message": "canceled"}


def test_the_transitions_say_why_they_are_refused() -> None:
    job = make_job()
    attempt = start(job)
    with pytest.raises(IllegalTransition) as refused:
        job.start(new_id("att"), "w", NOW, timedelta(seconds=30))
    assert str(refused.value) == f"job {job.id} is running, not queued"
    job.succeed(attempt, None, later(1))
    with pytest.raises(IllegalTransition) as refused:
        job.cancel(later(2))
    assert str(refused.value) == f"job {job.id} is already succeeded"
    with pytest.raises(IllegalTransition) as refused:
        job.retry(later(2))
    assert str(refused.value) == (
        f"job {job.id} is succeeded; only failed or canceled jobs can be retried"
    )
    with pytest.raises(IllegalTransition) as refused:
        attempt.close("failed", later(3), None)  # type: ignore[arg-type]
    assert str(refused.value) == f"attempt {attempt.id} is already succeeded"
    with pytest.raises(LeaseLost) as lost:
        job.succeed(attempt, None, later(3))
    assert str(lost.value) == f"attempt {attempt.id} no longer owns job {job.id}"


def test_a_retry_clears_what_the_last_run_left() -> None:
    job = make_job(max_attempts=1)
    attempt = start(job)
    job.fail_attempt(attempt, {"type": "handler_error"}, later(1), retry_at=None)
    job.result = {"partial": True}
    job.retry(later(5))
    assert (job.result, job.error, job.started_at, job.finished_at, job.published_at) == (
        None,
        None,
        None,
        None,
        None,
    )
    assert job.status == "queued" and job.attempts == 0 and job.run_at == later(5)


# -- the job service's audit and errors ------------------------------------------------------


def test_cancel_and_retry_are_audited_with_the_status_they_leave(
    stack: MemoryStack, admin: Principal
) -> None:
    job = stack.container.jobs.submit(admin, [echo()])[0]
    stack.container.jobs.cancel(admin, job.id)
    stack.container.jobs.retry(admin, job.id)
    events = [e for e in stack.audit(admin.tenant_id) if e.target_type == "job"]
    assert [(e.action, e.target_id, e.details) for e in events] == [
        ("job.cancel", job.id, {"status": "canceled"}),
        ("job.retry", job.id, {"status": "queued"}),
    ]
    assert all(e.tenant_id == admin.tenant_id for e in events)


def test_an_unknown_job_is_not_found_by_name(stack: MemoryStack, admin: Principal) -> None:
    missing = new_id("job")
    for call in (stack.container.jobs.get, stack.container.jobs.cancel):
        with pytest.raises(NotFound) as not_found:
            call(admin, missing)
        assert str(not_found.value) == f"no job {missing}"


def test_a_transition_racing_too_often_is_a_conflict(wiring: FakeWiring, alice: Principal) -> None:
    [job] = wiring.jobs.submit(alice, [echo()])
    wiring.store.fail_next_commits(StaleDataError("raced"), times=10)
    with pytest.raises(Conflict) as conflict:
        wiring.jobs.cancel(alice, job.id)
    assert str(conflict.value) == f"job {job.id} is changing too fast; try again"


def test_run_at_now_is_not_in_the_future(wiring: FakeWiring, alice: Principal) -> None:
    now = wiring.store.now
    [job] = wiring.jobs.submit(alice, [echo(run_at=now)])
    assert job.run_at == now and wiring.publisher.published == [Dispatch("default")]


# -- the execution service's log events ------------------------------------------------------


def test_a_job_of_an_unknown_type_is_left_queued_and_said_so(
    stack: MemoryStack, admin: Principal
) -> None:
    job = stack.container.jobs.submit(admin, [echo()])[0]
    stack.set_rows(Job, job.id, type="retired")
    with capture_logs() as logs:
        assert stack.container.execution.claim(job.id, "host:1") is None
    assert logs == [
        {
            "event": "unknown_job_type_left_queued",
            "log_level": "warning",
            "job_id": job.id,
            "job_type": "retired",
        }
    ]


def test_a_late_write_is_refused_and_said_so(stack: MemoryStack, admin: Principal) -> None:
    job = stack.container.jobs.submit(admin, [echo()])[0]
    claim = stack.container.execution.claim(job.id, "host:1")
    assert claim is not None
    assert stack.container.execution.look(claim) == (True, False)
    stack.container.jobs.cancel(admin, job.id)
    assert stack.container.execution.look(claim) == (True, True)
    stack.set_rows(Job, job.id, current_attempt_id=new_id("att"))
    assert stack.container.execution.look(claim) == (False, True)
    with capture_logs() as logs:
        assert stack.container.execution.succeed(claim, {"message": "x"}) is None
    assert logs == [
        {
            "event": "late_write_refused",
            "log_level": "warning",
            "job_id": job.id,
            "attempt_id": claim.attempt_id,
        }
    ]


def test_a_finish_that_keeps_losing_races_gives_up_and_says_so(
    wiring: FakeWiring, alice: Principal
) -> None:
    [job] = wiring.jobs.submit(alice, [echo()])
    claim = wiring.execution.claim(job.id, "host:1")
    assert claim is not None
    wiring.store.fail_next_commits(StaleDataError("raced"), times=5)
    with capture_logs() as logs:
        assert wiring.execution.succeed(claim, {"message": "x"}) is None
    assert logs == [
        {
            "event": "finish_gave_up",
            "log_level": "error",
            "job_id": job.id,
            "attempt_id": claim.attempt_id,
        }
    ]


def test_an_invalid_result_fails_for_good_naming_every_problem(
    wiring: FakeWiring, alice: Principal
) -> None:
    [job] = wiring.jobs.submit(alice, [echo(max_attempts=5)])
    claim = wiring.execution.claim(job.id, "host:1")
    assert claim is not None
    done = wiring.execution.succeed(claim, {"unexpected": 1, "also": 2})
    assert done is not None and done.status == "failed"
    assert done.error is not None and done.error["type"] == ErrorType.RESULT_INVALID
    assert "; " in done.error["message"]


def test_a_missing_attempt_finishes_nothing(stack: MemoryStack, admin: Principal) -> None:
    job = stack.container.jobs.submit(admin, [echo()])[0]
    claim = stack.container.execution.claim(job.id, "host:1")
    assert claim is not None
    assert stack.container.execution.succeed(replace(claim, attempt_id=new_id("att")), {}) is None
    with stack.uow() as uow:
        assert uow.jobs.get_unscoped(job.id).status == "running"  # type: ignore[union-attr]


# -- the scheduler ---------------------------------------------------------------------------


def test_the_scheduler_keeps_the_default_retention_when_given_none(
    stack: MemoryStack, admin: Principal
) -> None:
    job = stack.container.jobs.submit(admin, [echo()])[0]
    stack.container.jobs.cancel(admin, job.id)
    stack.set_rows(Job, job.id, finished_at=datetime.now(UTC) - timedelta(days=29))
    assert SchedulerService(stack.uow).purge() == 0
    assert SchedulerService(stack.uow, retention=None)._keep == Retention()
    stack.set_rows(Job, job.id, finished_at=datetime.now(UTC) - timedelta(days=31))
    assert SchedulerService(stack.uow).purge() == 1


def test_a_lapsed_lease_is_logged_with_its_worker(wiring: FakeWiring, alice: Principal) -> None:
    [job] = wiring.jobs.submit(alice, [echo()])
    claim = wiring.execution.claim(job.id, "host:7")
    assert claim is not None
    wiring.store.now += timedelta(hours=1)
    with capture_logs() as logs:
        assert wiring.scheduling.reclaim_lapsed() == 1
    assert logs == [
        {
            "event": "lease_lapsed",
            "log_level": "warning",
            "job_id": job.id,
            "attempt": 1,
            "worker": "host:7",
        }
    ]


# -- access ----------------------------------------------------------------------------------


def test_a_new_key_is_audited_with_its_name_and_role(stack: MemoryStack, admin: Principal) -> None:
    key = stack.container.access.create_key(admin.tenant_id, "deploy bot", Role.SUBMITTER)
    event = stack.audit(admin.tenant_id)[-1]
    assert (event.action, event.target_type, event.target_id, event.details) == (
        "api_key.create",
        "api_key",
        key.record.id,
        {"name": "deploy bot", "role": "submitter"},
    )


def test_authentication_says_why_it_failed(stack: MemoryStack, admin: Principal) -> None:
    access = stack.container.access
    key = access.create_key(admin.tenant_id, "k", Role.READER, datetime.now(UTC) - timedelta(1))
    for presented, reason in [
        ("not a key", "the API key is malformed"),
        ("hop_" + "a" * 40, "the API key is not known"),
        (key.secret, "the API key is revoked or expired"),
    ]:
        with pytest.raises(AuthenticationFailed) as failed:
            access.authenticate(presented)
        assert str(failed.value) == reason


def test_last_used_is_written_at_most_once_a_minute(stack: MemoryStack, admin: Principal) -> None:
    access = stack.container.access
    key = access.create_key(admin.tenant_id, "k", Role.READER)

    def last_used() -> datetime | None:
        with stack.uow() as uow:
            return uow.keys.get(admin.tenant_id, key.record.id).last_used_at  # type: ignore[union-attr]

    def authenticate_from_the_row() -> None:
        # As when the process's cached entry comes up for refresh (every 30 s): the row is read.
        stack.container.key_cache.clear()
        access.authenticate(key.secret)

    assert last_used() is None
    authenticate_from_the_row()
    first = last_used()
    assert first is not None and abs(first - datetime.now(UTC)) < timedelta(seconds=5)
    authenticate_from_the_row()
    assert last_used() == first  # within the minute: not written again
    stack.set_rows(ApiKey, key.record.id, last_used_at=first - timedelta(seconds=59))
    authenticate_from_the_row()
    assert last_used() == first - timedelta(seconds=59)
    stack.set_rows(ApiKey, key.record.id, last_used_at=first - timedelta(seconds=61))
    authenticate_from_the_row()
    assert last_used() is not None and last_used() > first - timedelta(seconds=5)  # type: ignore[operator]


def test_a_lapsed_job_whose_attempt_is_missing_does_not_stop_the_others(
    stack: MemoryStack, admin: Principal
) -> None:
    broken, fine = stack.container.jobs.submit(admin, [echo(), echo()])
    for job in (broken, fine):
        assert stack.container.execution.claim(job.id, "host:1") is not None
    now = datetime.now(UTC)
    stack.set_rows(
        Job, broken.id, lease_expires_at=now - timedelta(seconds=20), current_attempt_id="att_x"
    )
    stack.set_rows(Job, fine.id, lease_expires_at=now - timedelta(seconds=10))
    assert SchedulerService(stack.uow).reclaim_lapsed() == 2
    with stack.uow() as uow:
        assert uow.jobs.get_unscoped(broken.id).status == "running"  # type: ignore[union-attr]
        assert uow.jobs.get_unscoped(fine.id).status == "queued"  # type: ignore[union-attr]
        [attempt] = uow.jobs.attempts(fine.id)
        assert attempt.status == "failed" and attempt.error["type"] == "worker_lost"  # type: ignore[index]


def test_a_lease_lapsing_at_the_deadline_is_a_timeout() -> None:
    started = NOW
    assert _lapse_error(30, started, later(30), "w")["type"] == ErrorType.TIMEOUT
    assert _lapse_error(30, started, later(30), "w")["message"] == "ran past 30 s"
    lost = _lapse_error(30, started, later(29), "host:3")
    assert lost == {"type": ErrorType.WORKER_LOST, "message": "the lease of host:3 lapsed"}


def test_an_unknown_tenant_is_named_in_the_error(stack: MemoryStack) -> None:
    for wanted in ("nobody", new_id("ten")):
        with pytest.raises(NotFound) as missing:
            stack.container.access.find_tenant(wanted)
        assert str(missing.value) == f"no tenant {wanted!r}"


def test_the_job_list_follows_its_cursor(wiring: FakeWiring, alice: Principal) -> None:
    jobs = wiring.jobs.submit(alice, [echo(), echo(), echo()])
    first = wiring.jobs.list(alice, JobFilter(), 2, None)
    assert [j.id for j in first.items] == [jobs[2].id, jobs[1].id]
    rest = wiring.jobs.list(alice, JobFilter(), 2, first.next_cursor)
    assert [j.id for j in rest.items] == [jobs[0].id] and rest.next_cursor is None


def test_a_unit_of_work_takes_commands_again_after_a_rollback(stack: MemoryStack) -> None:
    with stack.uow() as uow:
        uow.rollback()
        uow.publish_after_commit(RunJob("job_1", "default", "normal"))
        uow.commit()
    assert stack.publisher.published == [RunJob("job_1", "default", "normal")]


@pytest.mark.parametrize("listing", ["keys", "audit", "endpoints"])
def test_a_page_reads_one_row_past_its_limit_and_no_more(
    stack: MemoryStack, admin: Principal, listing: str
) -> None:
    """The row past the limit says that more exist; a page that read more (or all) would
    still be right, and would read the whole table to say so."""
    for n in range(4):
        stack.webhooks.create(admin, {"url": f"https://hooks.example/{n}"})
        stack.container.access.create_key(admin.tenant_id, f"key {n}", Role.READER)
    statements: list[tuple[str, object]] = []

    def capture(_conn, _cursor, statement, parameters, _context, _many) -> None:  # type: ignore[no-untyped-def]
        statements.append((statement, parameters))

    read = {
        "keys": lambda: stack.container.access.list_keys(admin, 2, None),
        "audit": lambda: stack.container.access.audit_events(admin, 2, None),
        "endpoints": lambda: stack.webhooks.list(admin, 2, None),
    }[listing]
    event.listen(stack.engine, "before_cursor_execute", capture)
    try:
        page = read()
    finally:
        event.remove(stack.engine, "before_cursor_execute", capture)
    assert len(page.items) == 2 and page.next_cursor is not None
    # SQLite writes a page's query as `... LIMIT ? OFFSET ?`, the two last parameters.
    limits = [params[-2] for sql, params in statements if sql.rstrip().endswith("LIMIT ? OFFSET ?")]
    assert limits == [3], statements


@pytest.mark.parametrize(("length", "accepted"), [(0, False), (1, True), (200, True), (201, False)])
def test_a_tenant_name_is_1_to_200_characters(
    stack: MemoryStack, length: int, accepted: bool
) -> None:
    name = "t" * length
    if accepted:
        assert stack.container.access.create_tenant(name).name == name
    else:
        with pytest.raises(ValidationFailed):
            stack.container.access.create_tenant(name)
