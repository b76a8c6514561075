"""``JobService`` through the fake unit of work: submit, read, list, cancel, retry."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy.orm.exc import StaleDataError

from domain.auth import Principal
from domain.commands import SubmitJob
from domain.errors import Conflict, IllegalTransition, NotFound, ValidationFailed
from domain.model import Role
from domain.model.job import ErrorType
from domain.ports import Command, Dispatch
from domain.repositories import JobFilter
from tests.unit.builders import echo, principal, sleep
from tests.unit.fakes import FakePublisher, FakeStore, FakeWiring


def run_to_end(wiring: FakeWiring, job_id: str, *, fail: bool = False) -> None:
    claim = wiring.execution.claim(job_id, "host:1")
    assert claim is not None
    if fail:
        wiring.execution.fail(claim, ErrorType.HANDLER_ERROR, "boom", retry=False)
    else:
        wiring.execution.succeed(claim, {"message": "done"})


# -- submit -----------------------------------------------------------------------------------


def test_submit_records_a_queued_ready_job_with_the_types_defaults_and_rings(
    wiring: FakeWiring, alice: Principal
) -> None:
    (job,) = wiring.jobs.submit(alice, [echo("hi")], request_id="req-1")

    stored = wiring.store.job(job.id)
    now = wiring.store.now
    assert job.id.startswith("job_")
    assert stored.tenant_id == alice.tenant_id
    assert stored.type == "echo"
    assert stored.queue == "default"
    assert stored.status == "queued"
    assert stored.priority == "normal"
    assert stored.payload == {"message": "hi"}
    assert stored.result is None
    assert stored.error is None
    assert stored.attempts == 0
    assert stored.max_attempts == 3
    assert stored.timeout_seconds == 30
    assert stored.meta == {}
    assert stored.run_at == now
    assert stored.created_at == now
    assert stored.started_at is None
    assert stored.finished_at is None
    assert stored.cancel_requested is False
    assert stored.published_at is None  # ready: the dispatcher publishes it
    assert stored.request_id == "req-1"
    assert wiring.publisher.published == [Dispatch("default")]


def test_submit_honours_the_options(wiring: FakeWiring, alice: Principal) -> None:
    command = sleep(
        1, priority="high", max_attempts=7, timeout_seconds=5, metadata={"team": "core"}
    )
    (job,) = wiring.jobs.submit(alice, [command])

    stored = wiring.store.job(job.id)
    assert stored.queue == "long"
    assert stored.priority == "high"
    assert stored.max_attempts == 7
    assert stored.timeout_seconds == 5
    assert stored.meta == {"team": "core"}
    assert wiring.publisher.published == [Dispatch("long")]


def test_submit_copies_the_metadata(wiring: FakeWiring, alice: Principal) -> None:
    metadata = {"team": "core"}
    (job,) = wiring.jobs.submit(alice, [echo(metadata=metadata)])
    metadata["team"] = "changed"
    assert wiring.store.job(job.id).meta == {"team": "core"}


def test_a_future_run_at_is_recorded_and_rings_for_no_queue(
    wiring: FakeWiring, alice: Principal
) -> None:
    run_at = wiring.store.now + timedelta(hours=1)
    (job,) = wiring.jobs.submit(alice, [echo(run_at=run_at)])

    stored = wiring.store.job(job.id)
    assert stored.status == "queued"
    assert stored.run_at == run_at
    assert stored.published_at is None
    assert wiring.publisher.published == []


def test_a_past_run_at_means_now(wiring: FakeWiring, alice: Principal) -> None:
    (job,) = wiring.jobs.submit(alice, [echo(run_at=wiring.store.now - timedelta(days=1))])
    assert wiring.store.job(job.id).run_at == wiring.store.now
    assert wiring.publisher.published == [Dispatch("default")]


def test_an_invalid_job_is_refused_naming_the_field(wiring: FakeWiring, alice: Principal) -> None:
    with pytest.raises(ValidationFailed) as caught:
        wiring.jobs.submit(alice, [sleep(-1)])
    assert [e.field for e in caught.value.errors] == ["payload.seconds"]
    with pytest.raises(ValidationFailed) as caught:
        wiring.jobs.submit(alice, [SubmitJob(type="teleport")])
    assert [e.field for e in caught.value.errors] == ["type"]
    assert wiring.store.jobs == {}
    assert wiring.store.commits == 0


def test_a_batch_is_all_or_none(wiring: FakeWiring, alice: Principal) -> None:
    commands = [
        echo("fine"),
        sleep(4000),
        SubmitJob(type="teleport"),
        echo("x" * 10, metadata={"k": "v" * 501}),
    ]
    with pytest.raises(ValidationFailed) as caught:
        wiring.jobs.submit(alice, commands, batch=True)

    assert [e.field for e in caught.value.errors] == [
        "jobs.1.payload.seconds",
        "jobs.2.type",
        "jobs.3.metadata.k",
    ]
    assert wiring.store.jobs == {}
    assert wiring.store.commits == 0
    assert wiring.publisher.published == []


def test_a_valid_batch_is_recorded_in_order_in_one_commit(
    wiring: FakeWiring, alice: Principal
) -> None:
    later = wiring.store.now + timedelta(minutes=5)
    commands = [echo("a"), sleep(0.1, run_at=later), echo("c", priority="low")]

    jobs = wiring.jobs.submit(alice, commands, "req-9", batch=True)

    assert [j.type for j in jobs] == ["echo", "sleep", "echo"]
    assert [j.payload for j in jobs] == [c.payload for c in commands]
    assert [j.id for j in jobs] == sorted(j.id for j in jobs)
    assert wiring.store.commits == 1
    assert set(wiring.store.jobs) == {j.id for j in jobs}
    assert wiring.publisher.published == [Dispatch("default")]  # the sleep is for later


def test_the_dispatcher_is_rung_only_after_the_commit(alice: Principal) -> None:
    store = FakeStore()

    class CheckingPublisher(FakePublisher):
        def publish(self, commands: list[Command]) -> None:
            assert len(store.jobs) == 2, "rung before the rows were committed"
            super().publish(commands)

    wiring = FakeWiring(store=store, publisher=CheckingPublisher())
    wiring.jobs.submit(alice, [echo(), echo()], batch=True)
    assert wiring.publisher.published == [Dispatch("default")]


def test_nothing_is_published_when_the_commit_fails(wiring: FakeWiring, alice: Principal) -> None:
    wiring.store.fail_next_commits(RuntimeError("the disk is full"))
    with pytest.raises(RuntimeError, match="disk"):
        wiring.jobs.submit(alice, [echo()])
    assert wiring.store.jobs == {}
    assert wiring.publisher.published == []


# -- reading, tenant scoping ------------------------------------------------------------------


def test_get_returns_the_job_to_its_tenant(wiring: FakeWiring, alice: Principal) -> None:
    (job,) = wiring.jobs.submit(alice, [echo("mine")])
    reader = principal(Role.READER, alice.tenant_id)
    found = wiring.jobs.get(reader, job.id)
    assert found.id == job.id
    assert found.payload == {"message": "mine"}


def test_another_tenants_job_is_not_found_for_anything(
    wiring: FakeWiring, alice: Principal, bob: Principal
) -> None:
    (job,) = wiring.jobs.submit(alice, [echo()])
    commits = wiring.store.commits

    with pytest.raises(NotFound):
        wiring.jobs.get(bob, job.id)
    with pytest.raises(NotFound):
        wiring.jobs.attempts(bob, job.id)
    with pytest.raises(NotFound):
        wiring.jobs.cancel(bob, job.id)
    with pytest.raises(NotFound):
        wiring.jobs.retry(bob, job.id)
    page = wiring.jobs.list(bob, JobFilter(), 20, None)
    assert list(page.items) == []

    assert wiring.store.commits == commits
    assert wiring.store.job(job.id).status == "queued"


def test_a_missing_job_is_not_found(wiring: FakeWiring, alice: Principal) -> None:
    with pytest.raises(NotFound):
        wiring.jobs.get(alice, "job_01jd4b2v6v3cz8f0f2m9k7q1xw")


def test_get_without_wait_or_of_a_finished_job_does_not_wait(
    wiring: FakeWiring, alice: Principal
) -> None:
    (queued, done) = wiring.jobs.submit(alice, [echo(), echo()], batch=True)
    run_to_end(wiring, done.id)

    assert wiring.jobs.get(alice, queued.id).status == "queued"
    assert wiring.jobs.get(alice, done.id, wait=10).status == "succeeded"
    assert wiring.waiter.calls == []


def test_get_with_wait_waits_then_reads_the_job_again(wiring: FakeWiring, alice: Principal) -> None:
    (job,) = wiring.jobs.submit(alice, [echo()])
    wiring.waiter.on_wait = lambda job_id: run_to_end(wiring, job_id)

    found = wiring.jobs.get(alice, job.id, wait=7)

    ((waited_on, timeout),) = wiring.waiter.calls
    assert waited_on == job.id
    assert 6 < timeout <= 7
    assert found.status == "succeeded"
    assert found.result == {"message": "done"}


def test_a_long_poll_past_capacity_answers_at_once(wiring: FakeWiring, alice: Principal) -> None:
    (job,) = wiring.jobs.submit(alice, [echo()])
    wiring.waiter.full = True

    assert wiring.jobs.get(alice, job.id, wait=30).status == "queued"
    assert wiring.waiter.calls == []


def test_a_long_poll_that_times_out_answers_with_the_job_as_it_stands(
    wiring: FakeWiring, alice: Principal
) -> None:
    (job,) = wiring.jobs.submit(alice, [echo()])
    found = wiring.jobs.get(alice, job.id, wait=0.01)
    assert found.status == "queued"
    assert wiring.waiter.watched == [job.id]


def test_attempts_are_listed_oldest_first(wiring: FakeWiring, alice: Principal) -> None:
    (job,) = wiring.jobs.submit(alice, [echo(max_attempts=3)])
    claim = wiring.execution.claim(job.id, "host:1")
    assert claim is not None
    wiring.execution.fail(claim, ErrorType.HANDLER_ERROR, "first")
    wiring.store.advance(3600)
    run_to_end(wiring, job.id)

    attempts = wiring.jobs.attempts(alice, job.id)
    assert [a.number for a in attempts] == [1, 2]
    assert [a.status for a in attempts] == ["failed", "succeeded"]
    assert attempts[0].error == {"type": "handler_error", "message": "first"}


# -- listing ----------------------------------------------------------------------------------


def walk(wiring: FakeWiring, who: Principal, limit: int, filters: JobFilter | None = None) -> list:
    seen, cursor = [], None
    while True:
        page = wiring.jobs.list(who, filters or JobFilter(), limit, cursor)
        seen.extend(page.items)
        assert len(page.items) <= limit
        if page.next_cursor is None:
            return seen
        cursor = page.next_cursor


def test_list_is_newest_first_and_paginates(wiring: FakeWiring, alice: Principal) -> None:
    jobs = [wiring.jobs.submit(alice, [echo(str(i))])[0] for i in range(5)]

    first = wiring.jobs.list(alice, JobFilter(), 2, None)
    assert [j.id for j in first.items] == [jobs[4].id, jobs[3].id]
    assert first.next_cursor is not None
    assert [j.id for j in walk(wiring, alice, 2)] == [j.id for j in reversed(jobs)]
    last = wiring.jobs.list(alice, JobFilter(), 5, None)
    assert last.next_cursor is None


def test_walking_while_new_jobs_arrive_skips_and_repeats_nothing(
    wiring: FakeWiring, alice: Principal
) -> None:
    jobs = [wiring.jobs.submit(alice, [echo(str(i))])[0] for i in range(5)]
    page = wiring.jobs.list(alice, JobFilter(), 2, None)
    seen = list(page.items)
    wiring.jobs.submit(alice, [echo("new 1"), echo("new 2")], batch=True)
    cursor = page.next_cursor
    while cursor:
        page = wiring.jobs.list(alice, JobFilter(), 2, cursor)
        seen.extend(page.items)
        cursor = page.next_cursor
    assert [j.id for j in seen] == [j.id for j in reversed(jobs)]


def test_list_filters(wiring: FakeWiring, alice: Principal) -> None:
    (a, b, c) = wiring.jobs.submit(alice, [echo(), sleep(0), echo()], batch=True)
    wiring.jobs.cancel(alice, c.id)

    by_type = wiring.jobs.list(alice, JobFilter(type="echo"), 10, None)
    assert [j.id for j in by_type.items] == [c.id, a.id]
    by_status = wiring.jobs.list(alice, JobFilter(status="queued"), 10, None)
    assert [j.id for j in by_status.items] == [b.id, a.id]
    both = wiring.jobs.list(alice, JobFilter(status="canceled", type="echo"), 10, None)
    assert [j.id for j in both.items] == [c.id]


def test_list_refuses_a_junk_cursor(wiring: FakeWiring, alice: Principal) -> None:
    with pytest.raises(ValidationFailed) as caught:
        wiring.jobs.list(alice, JobFilter(), 10, "garbage")
    assert [e.field for e in caught.value.errors] == ["query.cursor"]


# -- cancel -----------------------------------------------------------------------------------


def test_cancel_of_a_queued_job_cancels_it(wiring: FakeWiring, alice: Principal) -> None:
    (job,) = wiring.jobs.submit(alice, [echo()])
    published = list(wiring.publisher.published)
    wiring.store.advance(5)

    canceled = wiring.jobs.cancel(alice, job.id)

    assert canceled.status == "canceled"
    stored = wiring.store.job(job.id)
    assert stored.status == "canceled"
    assert stored.error == {"type": "canceled", "message": "the job was canceled"}
    assert stored.finished_at == wiring.store.now
    assert wiring.publisher.published == published
    assert wiring.execution.claim(job.id, "host:1") is None


def test_cancel_of_a_running_job_requests_it(wiring: FakeWiring, alice: Principal) -> None:
    (job,) = wiring.jobs.submit(alice, [echo()])
    claim = wiring.execution.claim(job.id, "host:1")
    assert claim is not None

    answer = wiring.jobs.cancel(alice, job.id)

    assert answer.status == "running"
    assert answer.cancel_requested is True
    assert wiring.store.job(job.id).cancel_requested is True
    assert wiring.execution.renew(claim) == (True, True)


@pytest.mark.parametrize("fail", [False, True])
def test_cancel_of_a_finished_job_is_a_conflict(
    wiring: FakeWiring, alice: Principal, fail: bool
) -> None:
    (job,) = wiring.jobs.submit(alice, [echo()])
    run_to_end(wiring, job.id, fail=fail)
    before = wiring.store.job(job.id)

    with pytest.raises(IllegalTransition):
        wiring.jobs.cancel(alice, job.id)

    after = wiring.store.job(job.id)
    assert after.status == before.status
    assert after.version == before.version


def test_cancel_racing_a_claim_reads_again_and_requests_the_cancel(
    wiring: FakeWiring, alice: Principal
) -> None:
    (job,) = wiring.jobs.submit(alice, [echo()])
    claims = []
    wiring.store.before_next_commit(lambda: claims.append(wiring.execution.claim(job.id, "w")))

    answer = wiring.jobs.cancel(alice, job.id)

    assert claims[0] is not None
    assert answer.status == "running"
    assert answer.cancel_requested is True
    stored = wiring.store.job(job.id)
    assert stored.status == "running"
    assert stored.cancel_requested is True


def test_a_job_that_keeps_changing_is_a_conflict(wiring: FakeWiring, alice: Principal) -> None:
    (job,) = wiring.jobs.submit(alice, [echo()])
    wiring.store.fail_next_commits(StaleDataError("changed"), times=5)
    with pytest.raises(Conflict):
        wiring.jobs.cancel(alice, job.id)
    assert wiring.store.job(job.id).status == "queued"


# -- retry ------------------------------------------------------------------------------------


def test_retry_of_a_failed_job_queues_it_again_and_rings(
    wiring: FakeWiring, alice: Principal
) -> None:
    (job,) = wiring.jobs.submit(alice, [echo(max_attempts=1)], request_id="req-r")
    run_to_end(wiring, job.id, fail=True)
    wiring.publisher.published.clear()
    now = wiring.store.advance(60)

    answer = wiring.jobs.retry(alice, job.id)

    assert answer.status == "queued"
    stored = wiring.store.job(job.id)
    assert stored.status == "queued"
    assert stored.attempts == 0
    assert stored.result is None
    assert stored.error is None
    assert stored.started_at is None
    assert stored.finished_at is None
    assert stored.cancel_requested is False
    assert stored.run_at == now
    assert stored.published_at is None
    assert wiring.publisher.published == [Dispatch("default")]
    # the attempt history stays
    assert [a.status for a in wiring.jobs.attempts(alice, job.id)] == ["failed"]


def test_retry_of_a_canceled_job(wiring: FakeWiring, alice: Principal) -> None:
    (job,) = wiring.jobs.submit(alice, [echo()])
    wiring.jobs.cancel(alice, job.id)
    assert wiring.jobs.retry(alice, job.id).status == "queued"
    assert wiring.execution.claim(job.id, "host:1") is not None


def test_retry_of_a_queued_running_or_succeeded_job_is_a_conflict(
    wiring: FakeWiring, alice: Principal
) -> None:
    (queued, running, done) = wiring.jobs.submit(alice, [echo(), echo(), echo()], batch=True)
    assert wiring.execution.claim(running.id, "host:1") is not None
    run_to_end(wiring, done.id)
    wiring.publisher.published.clear()

    for job in (queued, running, done):
        with pytest.raises(IllegalTransition):
            wiring.jobs.retry(alice, job.id)

    assert wiring.store.job(queued.id).status == "queued"
    assert wiring.store.job(running.id).status == "running"
    assert wiring.store.job(done.id).status == "succeeded"
    assert wiring.publisher.published == []
