"""The job lifecycle in ``domain.model.job``: every legal move, and every illegal one refused."""

from __future__ import annotations

from datetime import timedelta

import pytest

from domain.errors import Conflict, IllegalTransition, LeaseLost
from domain.ids import new_id
from domain.model import AttemptStatus, JobStatus
from domain.model.job import ErrorType, job_error
from tests.unit.builders import LEASE, NOW, later, make_job, start

BOOM = job_error(ErrorType.HANDLER_ERROR, "boom")


def test_status_finished_flags() -> None:
    assert {s for s in JobStatus if s.finished} == {
        JobStatus.SUCCEEDED,
        JobStatus.FAILED,
        JobStatus.CANCELED,
    }
    assert not make_job().finished
    assert make_job(status="succeeded").finished


def test_job_error_shape() -> None:
    assert job_error(ErrorType.TIMEOUT, "too slow") == {"type": "timeout", "message": "too slow"}
    assert {str(e) for e in ErrorType} == {
        "handler_error",
        "timeout",
        "worker_lost",
        "result_invalid",
        "canceled",
    }


# -- start ------------------------------------------------------------------------------------


def test_start_opens_attempt_one_and_takes_the_lease() -> None:
    job = make_job()
    attempt_id = new_id("att")

    attempt = job.start(attempt_id, "host:42", NOW, LEASE)

    assert job.status == JobStatus.RUNNING
    assert job.attempts == 1
    assert job.started_at == NOW
    assert job.current_attempt_id == attempt_id
    assert job.lease_expires_at == NOW + LEASE
    assert attempt.id == attempt_id
    assert attempt.job_id == job.id
    assert attempt.number == 1
    assert attempt.status == AttemptStatus.RUNNING
    assert attempt.started_at == NOW
    assert attempt.finished_at is None
    assert attempt.worker == "host:42"


def test_start_keeps_the_first_started_at_across_attempts() -> None:
    job = make_job()
    first = start(job, NOW)
    job.fail_attempt(first, BOOM, later(1), retry_at=later(2))
    second = start(job, later(5))

    assert job.started_at == NOW
    assert second.started_at == later(5)
    assert second.number == 2
    assert job.attempts == 2


def test_start_when_run_at_is_exactly_now_is_allowed() -> None:
    job = make_job(run_at=NOW)
    start(job, NOW)
    assert job.status == JobStatus.RUNNING


def test_start_of_a_job_not_yet_due_is_refused() -> None:
    job = make_job(run_at=later(60))
    with pytest.raises(IllegalTransition, match="not due"):
        start(job, NOW)
    assert job.status == JobStatus.QUEUED
    assert job.attempts == 0
    assert job.current_attempt_id is None


@pytest.mark.parametrize("status", ["running", "succeeded", "failed", "canceled"])
def test_start_of_a_job_that_is_not_queued_is_refused(status: str) -> None:
    job = make_job(status=status, attempts=1)
    with pytest.raises(IllegalTransition):
        start(job)
    assert job.status == status
    assert job.attempts == 1


def test_start_of_a_queued_job_with_a_cancel_request_is_refused() -> None:
    job = make_job(cancel_requested=True)
    with pytest.raises(IllegalTransition):
        start(job)


def test_illegal_transition_is_a_conflict() -> None:
    # The API maps Conflict to 409: an illegal move must be one.
    assert issubclass(IllegalTransition, Conflict)
    assert not issubclass(LeaseLost, Conflict)


# -- succeed ----------------------------------------------------------------------------------


def test_succeed_records_result_and_closes_the_attempt() -> None:
    job = make_job()
    attempt = start(job)

    job.succeed(attempt, {"message": "hello"}, later(3))

    assert job.status == JobStatus.SUCCEEDED
    assert job.result == {"message": "hello"}
    assert job.error is None
    assert job.finished_at == later(3)
    assert job.current_attempt_id is None
    assert job.lease_expires_at is None
    assert attempt.status == AttemptStatus.SUCCEEDED
    assert attempt.finished_at == later(3)
    assert attempt.error is None


def test_succeed_after_a_cancel_request_ends_succeeded() -> None:
    # "if it finishes first, it ends as it finished"
    job = make_job()
    attempt = start(job)
    job.cancel(later(1))
    job.succeed(attempt, {"message": "x"}, later(2))
    assert job.status == JobStatus.SUCCEEDED
    assert job.result == {"message": "x"}


def test_succeed_from_an_attempt_that_no_longer_owns_the_job_is_refused() -> None:
    job = make_job()
    stale = start(job)
    job.fail_attempt(stale, BOOM, later(1), retry_at=later(1))
    current = start(job, later(2))

    with pytest.raises(LeaseLost):
        job.succeed(stale, {"message": "late"}, later(3))

    assert job.status == JobStatus.RUNNING
    assert job.current_attempt_id == current.id
    assert job.result is None


def test_succeed_of_a_job_that_is_no_longer_running_is_refused() -> None:
    job = make_job()
    attempt = start(job)
    job.succeed(attempt, {"message": "a"}, later(1))
    with pytest.raises(LeaseLost):
        job.succeed(attempt, {"message": "b"}, later(2))
    assert job.result == {"message": "a"}
    assert job.finished_at == later(1)


def test_succeed_with_a_foreign_attempt_is_refused() -> None:
    job = make_job()
    start(job)
    other_job = make_job()
    foreign = start(other_job)
    with pytest.raises(LeaseLost):
        job.succeed(foreign, {"message": "x"}, later(1))
    assert foreign.status == AttemptStatus.RUNNING


# -- fail_attempt -----------------------------------------------------------------------------


def test_fail_attempt_with_attempts_left_goes_back_to_queued_at_retry_at() -> None:
    job = make_job(max_attempts=3)
    attempt = start(job)

    job.fail_attempt(attempt, BOOM, later(1), retry_at=later(10))

    assert job.status == JobStatus.QUEUED
    assert job.run_at == later(10)
    assert job.current_attempt_id is None
    assert job.lease_expires_at is None
    assert job.published_at is None  # the scheduler publishes it when due
    assert job.finished_at is None
    assert job.attempts == 1
    assert attempt.status == AttemptStatus.FAILED
    assert attempt.error == BOOM
    assert attempt.finished_at == later(1)


def test_fail_attempt_on_the_last_attempt_fails_for_good_with_the_last_error() -> None:
    job = make_job(max_attempts=2)
    first = start(job)
    job.fail_attempt(first, job_error(ErrorType.HANDLER_ERROR, "one"), later(1), later(2))
    second = start(job, later(2))
    last = job_error(ErrorType.TIMEOUT, "two")

    job.fail_attempt(second, last, later(3), retry_at=later(4))

    assert job.status == JobStatus.FAILED
    assert job.error == last
    assert job.attempts == 2
    assert job.finished_at == later(3)
    assert job.current_attempt_id is None
    assert job.lease_expires_at is None
    assert second.status == AttemptStatus.FAILED


def test_fail_attempt_without_retry_at_fails_for_good_whatever_attempts_are_left() -> None:
    job = make_job(max_attempts=25)
    attempt = start(job)
    error = job_error(ErrorType.RESULT_INVALID, "bad result")
    job.fail_attempt(attempt, error, later(1), retry_at=None)
    assert job.status == JobStatus.FAILED
    assert job.error == error
    assert job.attempts == 1


def test_fail_attempt_with_a_cancel_request_ends_canceled_not_retried() -> None:
    job = make_job(max_attempts=5)
    attempt = start(job)
    job.cancel(later(1))

    job.fail_attempt(attempt, BOOM, later(2), retry_at=later(3))

    assert job.status == JobStatus.CANCELED
    assert job.error == {"type": "canceled", "message": "the job was canceled"}
    assert job.finished_at == later(2)
    assert attempt.status == AttemptStatus.FAILED
    assert attempt.error == BOOM


def test_fail_attempt_from_a_stale_attempt_is_refused_and_changes_nothing() -> None:
    job = make_job()
    stale = start(job)
    job.fail_attempt(stale, BOOM, later(1), retry_at=later(1))
    current = start(job, later(2))

    with pytest.raises(LeaseLost):
        job.fail_attempt(stale, BOOM, later(3), retry_at=later(4))

    assert job.status == JobStatus.RUNNING
    assert job.current_attempt_id == current.id
    assert current.status == AttemptStatus.RUNNING


def test_fail_attempt_of_a_queued_job_is_refused() -> None:
    job = make_job()
    attempt = start(job)
    job.fail_attempt(attempt, BOOM, later(1), retry_at=later(1))
    with pytest.raises(LeaseLost):
        job.fail_attempt(attempt, BOOM, later(2), retry_at=later(3))
    assert job.status == JobStatus.QUEUED


def test_closing_an_attempt_twice_is_refused() -> None:
    job = make_job()
    attempt = start(job)
    attempt.close(AttemptStatus.FAILED, later(1), BOOM)
    with pytest.raises(IllegalTransition):
        attempt.close(AttemptStatus.SUCCEEDED, later(2), None)
    assert attempt.status == AttemptStatus.FAILED
    assert attempt.finished_at == later(1)


# -- cancel and stop_canceled -----------------------------------------------------------------


def test_cancel_of_a_queued_job_cancels_it_at_once() -> None:
    job = make_job(run_at=later(3600))
    job.cancel(later(1))
    assert job.status == JobStatus.CANCELED
    assert job.error == {"type": "canceled", "message": "the job was canceled"}
    assert job.finished_at == later(1)
    assert job.attempts == 0
    assert job.cancel_requested is False


def test_cancel_of_a_running_job_only_requests_it() -> None:
    job = make_job()
    attempt = start(job)
    job.cancel(later(1))
    assert job.status == JobStatus.RUNNING
    assert job.cancel_requested is True
    assert job.finished_at is None
    assert job.current_attempt_id == attempt.id
    job.cancel(later(2))  # asking twice is harmless
    assert job.cancel_requested is True


@pytest.mark.parametrize("status", ["succeeded", "failed", "canceled"])
def test_cancel_of_a_finished_job_is_refused(status: str) -> None:
    job = make_job(status=status, finished_at=NOW, result={"message": "kept"})
    with pytest.raises(IllegalTransition):
        job.cancel(later(1))
    assert job.status == status
    assert job.finished_at == NOW
    assert job.result == {"message": "kept"}


def test_stop_canceled_ends_the_job_and_the_attempt_as_canceled() -> None:
    job = make_job()
    attempt = start(job)
    job.cancel(later(1))

    job.stop_canceled(attempt, later(2))

    assert job.status == JobStatus.CANCELED
    assert job.error == {"type": "canceled", "message": "the job was canceled"}
    assert job.finished_at == later(2)
    assert job.current_attempt_id is None
    assert job.lease_expires_at is None
    assert attempt.status == AttemptStatus.FAILED
    assert attempt.error is not None
    assert attempt.error["type"] == "canceled"
    assert attempt.finished_at == later(2)


def test_stop_canceled_from_a_stale_attempt_is_refused() -> None:
    job = make_job()
    stale = start(job)
    job.fail_attempt(stale, BOOM, later(1), retry_at=later(1))
    start(job, later(2))
    with pytest.raises(LeaseLost):
        job.stop_canceled(stale, later(3))
    assert job.status == JobStatus.RUNNING


# -- retry ------------------------------------------------------------------------------------


def _failed_job():
    job = make_job(max_attempts=1, published_at=NOW)
    attempt = start(job)
    job.fail_attempt(attempt, BOOM, later(1), retry_at=later(2))
    assert job.status == JobStatus.FAILED
    return job


def test_retry_of_a_failed_job_clears_what_the_contract_lists() -> None:
    job = _failed_job()

    job.retry(later(100))

    assert job.status == JobStatus.QUEUED
    assert job.attempts == 0
    assert job.result is None
    assert job.error is None
    assert job.started_at is None
    assert job.finished_at is None
    assert job.cancel_requested is False
    assert job.run_at == later(100)
    assert job.published_at is None
    assert job.current_attempt_id is None
    assert job.lease_expires_at is None
    assert job.max_attempts == 1  # not a reset of the job's settings
    assert job.payload == {"message": "hello"}


def test_retry_of_a_canceled_job_after_a_cancel_request() -> None:
    job = make_job()
    attempt = start(job)
    job.cancel(later(1))
    job.stop_canceled(attempt, later(2))

    job.retry(later(3))

    assert job.status == JobStatus.QUEUED
    assert job.cancel_requested is False
    assert job.error is None
    start(job, later(3))  # runnable again
    assert job.status == JobStatus.RUNNING


@pytest.mark.parametrize("status", ["queued", "running", "succeeded"])
def test_retry_of_a_job_that_is_not_failed_or_canceled_is_refused(status: str) -> None:
    job = make_job(status=status, attempts=1, result={"message": "r"})
    with pytest.raises(IllegalTransition):
        job.retry(later(1))
    assert job.status == status
    assert job.attempts == 1
    assert job.result == {"message": "r"}


def test_retry_of_a_running_job_is_refused_and_its_attempt_keeps_the_job() -> None:
    job = make_job()
    attempt = start(job)
    with pytest.raises(IllegalTransition):
        job.retry(later(1))
    job.succeed(attempt, {"message": "ok"}, later(2))
    assert job.status == JobStatus.SUCCEEDED


# -- attempt numbering ------------------------------------------------------------------------


def test_attempts_are_numbered_from_one_in_order() -> None:
    job = make_job(max_attempts=3)
    numbers = []
    at = NOW
    for _ in range(3):
        attempt = start(job, at)
        numbers.append(attempt.number)
        at += timedelta(seconds=1)
        job.fail_attempt(attempt, BOOM, at, retry_at=at)
    assert numbers == [1, 2, 3]
    assert job.status == JobStatus.FAILED
    assert job.attempts == 3


def test_attempt_numbers_continue_across_a_manual_retry() -> None:
    # Contract, section 3: "Every run of a job is an attempt, numbered from 1 across the job's
    # life", while the retry route resets the job's `attempts` count to 0 and keeps the history.
    job = make_job(max_attempts=1)
    first = start(job)
    job.fail_attempt(first, BOOM, later(1), retry_at=None)
    job.retry(later(2))
    assert job.attempts == 0

    second = start(job, later(3))

    assert first.number == 1
    assert second.number == 2


# -- hand back (a graceful stop past its grace) ------------------------------------------------


def test_a_handed_back_attempt_does_not_count_and_the_job_is_ready_at_once() -> None:
    job = make_job(max_attempts=1)
    attempt = start(job, worker="host:7")
    job.hand_back(attempt, later(5))
    assert (job.status, job.attempts, job.attempts_total) == (JobStatus.QUEUED, 0, 1)
    assert job.run_at == later(5) and job.published_at is None  # ready for the dispatcher
    assert (job.current_attempt_id, job.lease_expires_at) == (None, None)
    assert attempt.status == AttemptStatus.FAILED and attempt.finished_at == later(5)
    assert attempt.error == job_error(ErrorType.WORKER_LOST, "handed back: host:7 stopped")
    second = start(job, later(6))
    assert (second.number, job.attempts) == (2, 1)  # numbered on; one of one counted
    assert job.take_events() == ["job.started", "job.started"]


def test_a_handed_back_job_that_was_asked_to_cancel_ends_canceled() -> None:
    job = make_job()
    attempt = start(job)
    job.cancel(later(1))
    job.hand_back(attempt, later(2))
    assert job.status == JobStatus.CANCELED and job.finished_at == later(2)


def test_only_the_owning_attempt_can_be_handed_back() -> None:
    job = make_job()
    attempt = start(job)
    job.succeed(attempt, {"message": "done"}, later(1))
    with pytest.raises(LeaseLost):
        job.hand_back(attempt, later(2))
