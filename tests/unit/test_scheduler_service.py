"""``SchedulerService`` through the fake unit of work: reclaim lapsed runs, purge old rows."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.orm.exc import StaleDataError

from domain.auth import Principal
from domain.commands import SubmitJob
from tests.unit.builders import echo
from tests.unit.fakes import FakeWiring


def submit_one(
    wiring: FakeWiring, who: Principal, command: SubmitJob, request_id: str | None = None
) -> str:
    (job,) = wiring.jobs.submit(who, [command], request_id)
    return job.id


def in_seconds(wiring: FakeWiring, seconds: float):
    return wiring.store.now + timedelta(seconds=seconds)


# -- reclaim_lapsed ---------------------------------------------------------------------------


def test_reclaim_ends_a_lapsed_attempt_as_worker_lost_and_queues_the_job(
    wiring: FakeWiring, alice: Principal
) -> None:
    job_id = submit_one(wiring, alice, echo(max_attempts=3, timeout_seconds=600))
    claim = wiring.execution.claim(job_id, "dead-host:99")
    assert claim is not None
    now = wiring.store.advance(31)

    assert wiring.scheduling.reclaim_lapsed() == 1

    job = wiring.store.job(job_id)
    assert job.status == "queued"
    assert job.run_at == now
    assert job.published_at is None
    assert job.current_attempt_id is None
    assert job.lease_expires_at is None
    assert job.attempts == 1
    (attempt,) = wiring.store.attempts_of(job_id)
    assert attempt.status == "failed"
    assert attempt.finished_at == now
    assert attempt.error is not None
    assert attempt.error["type"] == "worker_lost"
    assert "dead-host:99" in attempt.error["message"]

    # ... and it runs again: it is ready for the dispatcher, and a worker takes attempt 2.
    again = wiring.execution.claim(job_id, "host:2")
    assert again is not None
    assert again.attempt == 2


def test_reclaim_leaves_live_runs_alone(wiring: FakeWiring, alice: Principal) -> None:
    (a, b) = (j.id for j in wiring.jobs.submit(alice, [echo(), echo()], batch=True))
    claim_a = wiring.execution.claim(a, "host:1")
    claim_b = wiring.execution.claim(b, "host:2")
    assert claim_a is not None
    assert claim_b is not None
    wiring.store.advance(20)
    assert wiring.execution.renew(claim_a) == (True, False)
    wiring.store.advance(11)  # b's lease (30 s) lapsed, a's was renewed 11 s ago

    assert wiring.scheduling.reclaim_lapsed() == 1

    assert wiring.store.job(a).status == "running"
    assert wiring.store.job(b).status == "queued"
    assert wiring.scheduling.reclaim_lapsed() == 0
    assert wiring.store.job(a).current_attempt_id == claim_a.attempt_id


def test_a_lease_exactly_at_its_end_is_not_lapsed(wiring: FakeWiring, alice: Principal) -> None:
    job_id = submit_one(wiring, alice, echo())
    assert wiring.execution.claim(job_id, "host:1") is not None
    wiring.store.advance(30)
    assert wiring.scheduling.reclaim_lapsed() == 0
    assert wiring.store.job(job_id).status == "running"


def test_reclaim_on_the_last_attempt_fails_the_job_as_worker_lost(
    wiring: FakeWiring, alice: Principal
) -> None:
    job_id = submit_one(wiring, alice, echo(max_attempts=1, timeout_seconds=600))
    assert wiring.execution.claim(job_id, "gone:1") is not None
    wiring.store.advance(60)

    assert wiring.scheduling.reclaim_lapsed() == 1

    job = wiring.store.job(job_id)
    assert job.status == "failed"
    assert job.error is not None
    assert job.error["type"] == "worker_lost"
    assert job.finished_at == wiring.store.now


def test_reclaim_of_a_run_with_a_cancel_request_ends_canceled(
    wiring: FakeWiring, alice: Principal
) -> None:
    job_id = submit_one(wiring, alice, echo(max_attempts=3))
    assert wiring.execution.claim(job_id, "gone:1") is not None
    wiring.jobs.cancel(alice, job_id)
    wiring.store.advance(60)

    wiring.scheduling.reclaim_lapsed()

    assert wiring.store.job(job_id).status == "canceled"


def test_reclaim_respects_its_limit_oldest_lease_first(
    wiring: FakeWiring, alice: Principal
) -> None:
    ids = []
    for _ in range(3):
        job_id = submit_one(wiring, alice, echo())
        assert wiring.execution.claim(job_id, "host:1") is not None
        ids.append(job_id)
        wiring.store.advance(1)
    wiring.store.advance(60)

    assert wiring.scheduling.reclaim_lapsed(limit=2) == 2
    assert [wiring.store.job(i).status for i in ids] == ["queued", "queued", "running"]
    assert wiring.scheduling.reclaim_lapsed(limit=2) == 1


def test_reclaim_racing_a_worker_changes_nothing_this_pass(
    wiring: FakeWiring, alice: Principal
) -> None:
    job_id = submit_one(wiring, alice, echo())
    claim = wiring.execution.claim(job_id, "slow:1")
    assert claim is not None
    wiring.store.advance(31)
    wiring.store.before_next_commit(lambda: wiring.execution.succeed(claim, {"message": "made it"}))

    assert wiring.scheduling.reclaim_lapsed() == 0

    job = wiring.store.job(job_id)
    assert job.status == "succeeded"
    assert job.result == {"message": "made it"}
    assert [a.status for a in wiring.store.attempts_of(job_id)] == ["succeeded"]


def test_reclaim_with_nothing_lapsed(wiring: FakeWiring) -> None:
    assert wiring.scheduling.reclaim_lapsed() == 0


def test_a_stale_data_error_in_reclaim_is_absorbed(wiring: FakeWiring, alice: Principal) -> None:
    job_id = submit_one(wiring, alice, echo())
    assert wiring.execution.claim(job_id, "host:1") is not None
    wiring.store.advance(31)
    wiring.store.fail_next_commits(StaleDataError("raced"))
    assert wiring.scheduling.reclaim_lapsed() == 0
    assert wiring.store.job(job_id).status == "running"
    assert wiring.scheduling.reclaim_lapsed() == 1


def test_a_lease_that_lapses_past_the_runs_deadline_ends_it_as_a_timeout(
    wiring: FakeWiring, alice: Principal
) -> None:
    job_id = submit_one(wiring, alice, echo(max_attempts=1, timeout_seconds=20))
    assert wiring.execution.claim(job_id, "stuck:1") is not None
    wiring.store.advance(31)  # the lease (30 s) lapsed after the deadline (20 s)

    assert wiring.scheduling.reclaim_lapsed() == 1

    job = wiring.store.job(job_id)
    assert job.status == "failed"
    assert job.error == {"type": "timeout", "message": "ran past 20 s"}
