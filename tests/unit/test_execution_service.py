"""``ExecutionService`` through the fake unit of work: claim, renew, and every way a run ends."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import marshmallow as ma
import pytest
from sqlalchemy.orm.exc import StaleDataError

from domain import queues
from domain.auth import Principal
from domain.commands import SubmitJob
from domain.job_types import JobType, Registry, build_registry
from domain.model.job import ErrorType
from domain.services.execution import MAX_RESULT_BYTES, Claim
from tests.unit.builders import echo, sleep
from tests.unit.fakes import FakeWiring, fake_settings


class Ceiling:
    """Stands in for the ``random`` module in ``domain.retry``: every jitter draw is the ceiling,
    so backoff delays are exact."""

    @staticmethod
    def uniform(low: float, high: float) -> float:
        return high


@pytest.fixture
def no_jitter(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("domain.retry.random", Ceiling)


class BlobPayload(ma.Schema):
    size = ma.fields.Integer(required=True)


class BlobResult(ma.Schema):
    data = ma.fields.String(required=True)


def blob_type(**overrides: Any) -> JobType:
    values: dict[str, Any] = {
        "name": "blob",
        "description": "Returns data of the size asked.",
        "queue": queues.DEFAULT,
        "payload_schema": BlobPayload,
        "result_schema": BlobResult,
        "handler": lambda payload, ctx: {"data": "x" * payload["size"]},
    }
    values.update(overrides)
    return JobType(**values)


def registry_with(*extra: JobType) -> Registry:
    registry = build_registry()
    for job_type in extra:
        registry.register(job_type)
    return registry


def submit_one(
    wiring: FakeWiring, who: Principal, command: SubmitJob, request_id: str | None = None
) -> str:
    (job,) = wiring.jobs.submit(who, [command], request_id)
    return job.id


def claim_of(wiring: FakeWiring, job_id: str, worker: str = "host:1") -> Claim:
    claim = wiring.execution.claim(job_id, worker)
    assert claim is not None
    return claim


# -- claim ------------------------------------------------------------------------------------


def test_claim_starts_the_first_attempt(wiring: FakeWiring, alice: Principal) -> None:
    job_id = submit_one(wiring, alice, echo("hi", timeout_seconds=45), "req-c")
    now = wiring.store.advance(2)

    claim = wiring.execution.claim(job_id, "host:7")

    assert claim is not None
    assert claim.job_id == job_id
    assert claim.attempt_id.startswith("att_")
    assert claim.attempt == 1
    assert claim.type == "echo"
    assert claim.payload == {"message": "hi"}
    assert claim.deadline == now + timedelta(seconds=45)
    assert claim.timeout_seconds == 45
    assert claim.request_id == "req-c"
    job = wiring.store.job(job_id)
    assert job.status == "running"
    assert job.attempts == 1
    assert job.started_at == now
    assert job.current_attempt_id == claim.attempt_id
    assert job.lease_expires_at == now + timedelta(seconds=30)
    (attempt,) = wiring.store.attempts_of(job_id)
    assert attempt.id == claim.attempt_id
    assert attempt.number == 1
    assert attempt.status == "running"
    assert attempt.worker == "host:7"
    assert attempt.started_at == now


def test_the_lease_follows_the_settings(alice: Principal) -> None:
    wiring = FakeWiring(settings=fake_settings(lease_seconds=4.5))
    job_id = submit_one(wiring, alice, echo())
    claim_of(wiring, job_id)
    assert wiring.store.job(job_id).lease_expires_at == wiring.store.now + timedelta(seconds=4.5)
    assert wiring.execution.lease == timedelta(seconds=4.5)


def test_a_duplicate_message_does_not_run_the_job_twice(
    wiring: FakeWiring, alice: Principal
) -> None:
    job_id = submit_one(wiring, alice, echo())
    claim_of(wiring, job_id, "host:1")
    assert wiring.execution.claim(job_id, "host:2") is None
    assert len(wiring.store.attempts_of(job_id)) == 1
    assert wiring.store.job(job_id).attempts == 1


def test_claim_of_an_unknown_job_is_none(wiring: FakeWiring) -> None:
    assert wiring.execution.claim("job_01jd4b2v6v3cz8f0f2m9k7q1xw", "host:1") is None
    assert wiring.store.commits == 0


@pytest.mark.parametrize("end", ["succeed", "fail", "cancel"])
def test_claim_of_a_finished_job_is_none_and_changes_nothing(
    wiring: FakeWiring, alice: Principal, end: str
) -> None:
    job_id = submit_one(wiring, alice, echo(max_attempts=1))
    if end == "cancel":
        wiring.jobs.cancel(alice, job_id)
    else:
        claim = claim_of(wiring, job_id)
        if end == "succeed":
            wiring.execution.succeed(claim, {"message": "ok"})
        else:
            wiring.execution.fail(claim, ErrorType.HANDLER_ERROR, "no")
    before = wiring.store.job(job_id)

    assert wiring.execution.claim(job_id, "host:2") is None

    after = wiring.store.job(job_id)
    assert (after.status, after.version, after.attempts) == (
        before.status,
        before.version,
        before.attempts,
    )


def test_claim_of_a_job_not_yet_due_is_none_until_it_is(
    wiring: FakeWiring, alice: Principal
) -> None:
    job_id = submit_one(wiring, alice, echo(run_at=wiring.store.now + timedelta(seconds=30)))
    assert wiring.execution.claim(job_id, "host:1") is None
    assert wiring.store.job(job_id).status == "queued"
    wiring.store.advance(30)
    assert wiring.execution.claim(job_id, "host:1") is not None


def test_claim_of_an_unknown_type_leaves_the_job_queued(alice: Principal) -> None:
    # A rolling deploy: the job was accepted by a process that knows the type, and reaches a
    # worker that does not.
    newer = FakeWiring(registry=registry_with(blob_type()))
    job_id = submit_one(newer, alice, SubmitJob(type="blob", payload={"size": 1}))
    older = FakeWiring(store=newer.store, publisher=newer.publisher)
    commits = newer.store.commits

    assert older.execution.claim(job_id, "old:1") is None

    job = newer.store.job(job_id)
    assert job.status == "queued"
    assert job.attempts == 0
    assert newer.store.attempts_of(job_id) == []
    assert newer.store.commits == commits
    assert newer.execution.claim(job_id, "new:1") is not None


def test_claim_losing_a_race_is_none(wiring: FakeWiring, alice: Principal) -> None:
    job_id = submit_one(wiring, alice, echo())
    rival: list[Claim | None] = []
    wiring.store.before_next_commit(lambda: rival.append(wiring.execution.claim(job_id, "rival:1")))

    assert wiring.execution.claim(job_id, "host:1") is None

    assert rival[0] is not None
    (attempt,) = wiring.store.attempts_of(job_id)
    assert attempt.worker == "rival:1"
    assert wiring.store.job(job_id).current_attempt_id == rival[0].attempt_id


# -- succeed ----------------------------------------------------------------------------------


def test_succeed_records_the_result(wiring: FakeWiring, alice: Principal) -> None:
    job_id = submit_one(wiring, alice, echo("hi"))
    claim = claim_of(wiring, job_id)
    now = wiring.store.advance(3)
    published = list(wiring.publisher.published)

    job = wiring.execution.succeed(claim, {"message": "hi"})

    assert job is not None
    assert job.status == "succeeded"
    stored = wiring.store.job(job_id)
    assert stored.status == "succeeded"
    assert stored.result == {"message": "hi"}
    assert stored.error is None
    assert stored.finished_at == now
    assert stored.current_attempt_id is None
    assert stored.lease_expires_at is None
    (attempt,) = wiring.store.attempts_of(job_id)
    assert attempt.status == "succeeded"
    assert attempt.finished_at == now
    assert wiring.publisher.published == published


@pytest.mark.parametrize(
    ("result", "hint"),
    [
        ({"message": 5}, "result.message"),
        ({}, "result.message"),
        ({"message": "x", "extra": 1}, "result.extra"),
        (["message"], "result"),
        ("message", "result"),
        ({"message": float("nan")}, "not JSON"),
        ({"message": {1, 2}}, "not JSON"),
    ],
)
def test_a_result_that_breaks_the_schema_fails_the_job_as_result_invalid_without_retry(
    wiring: FakeWiring, alice: Principal, result: Any, hint: str
) -> None:
    job_id = submit_one(wiring, alice, echo(max_attempts=5))
    claim = claim_of(wiring, job_id)

    job = wiring.execution.succeed(claim, result)

    assert job is not None
    stored = wiring.store.job(job_id)
    assert stored.status == "failed"
    assert stored.attempts == 1
    assert stored.result is None
    assert stored.error is not None
    assert stored.error["type"] == "result_invalid"
    assert hint in stored.error["message"]
    (attempt,) = wiring.store.attempts_of(job_id)
    assert attempt.status == "failed"
    assert attempt.error == stored.error


def _blob_wiring() -> FakeWiring:
    return FakeWiring(registry=registry_with(blob_type()))


def _data_of_json_size(size: int) -> str:
    overhead = len(json.dumps({"data": ""}))
    return "x" * (size - overhead)


def test_a_result_at_the_256_kib_cap_is_accepted(alice: Principal) -> None:
    wiring = _blob_wiring()
    job_id = submit_one(wiring, alice, SubmitJob(type="blob", payload={"size": 1}))
    result = {"data": _data_of_json_size(MAX_RESULT_BYTES)}
    assert len(json.dumps(result).encode()) == 256 * 1024

    wiring.execution.succeed(claim_of(wiring, job_id), result)

    assert wiring.store.job(job_id).status == "succeeded"


def test_a_result_over_256_kib_is_result_invalid(alice: Principal) -> None:
    wiring = _blob_wiring()
    job_id = submit_one(wiring, alice, SubmitJob(type="blob", payload={"size": 1}))
    result = {"data": _data_of_json_size(MAX_RESULT_BYTES + 1)}

    wiring.execution.succeed(claim_of(wiring, job_id), result)

    stored = wiring.store.job(job_id)
    assert stored.status == "failed"
    assert stored.result is None
    assert stored.error is not None
    assert stored.error["type"] == "result_invalid"
    assert str(MAX_RESULT_BYTES) in stored.error["message"]


def test_the_result_cap_counts_utf8_bytes_not_json_escapes(alice: Principal) -> None:
    # 100,000 "é" are 200,012 bytes of UTF-8 JSON, well under 256 KiB; measured with
    # json.dumps' default ASCII escapes ("\u00e9", 6 bytes each) they look like 600,012.
    wiring = _blob_wiring()
    job_id = submit_one(wiring, alice, SubmitJob(type="blob", payload={"size": 1}))
    result = {"data": "é" * 100_000}
    assert len(json.dumps(result, ensure_ascii=False).encode()) < MAX_RESULT_BYTES

    wiring.execution.succeed(claim_of(wiring, job_id), result)

    stored = wiring.store.job(job_id)
    assert stored.error is None
    assert stored.status == "succeeded"


# -- fail -------------------------------------------------------------------------------------


@pytest.mark.usefixtures("no_jitter")
def test_fail_with_attempts_left_queues_the_job_again_after_a_backoff(
    wiring: FakeWiring, alice: Principal
) -> None:
    job_id = submit_one(wiring, alice, echo(max_attempts=3))
    claim = claim_of(wiring, job_id)
    now = wiring.store.advance(1)

    wiring.execution.fail(claim, ErrorType.HANDLER_ERROR, "boom")

    job = wiring.store.job(job_id)
    assert job.status == "queued"
    assert job.run_at == now + timedelta(seconds=1)  # base 1 s, attempt 1
    assert job.run_at > now
    assert job.published_at is None
    assert job.current_attempt_id is None
    assert job.error is None
    (attempt,) = wiring.store.attempts_of(job_id)
    assert attempt.status == "failed"
    assert attempt.error == {"type": "handler_error", "message": "boom"}
    # not runnable before its run_at
    assert wiring.execution.claim(job_id, "host:1") is None


def test_fail_backoff_is_in_the_future_and_below_the_exponential_ceiling(
    wiring: FakeWiring, alice: Principal
) -> None:
    job_id = submit_one(wiring, alice, echo(max_attempts=5))
    for attempt in (1, 2, 3):
        claim = claim_of(wiring, job_id)
        now = wiring.store.now
        wiring.execution.fail(claim, ErrorType.HANDLER_ERROR, f"boom {attempt}")
        delay = (wiring.store.job(job_id).run_at - now).total_seconds()
        assert 0 <= delay <= 2 ** (attempt - 1)
        wiring.store.advance(10)


@pytest.mark.usefixtures("no_jitter")
def test_the_settings_cap_the_backoff(alice: Principal) -> None:
    wiring = FakeWiring(settings=fake_settings(retry_base_seconds=10, retry_max_seconds=15))
    job_id = submit_one(wiring, alice, echo(max_attempts=4))
    delays = []
    for _ in range(3):
        claim = claim_of(wiring, job_id)
        now = wiring.store.now
        wiring.execution.fail(claim, ErrorType.HANDLER_ERROR, "boom")
        delays.append((wiring.store.job(job_id).run_at - now).total_seconds())
        wiring.store.advance(100)
    assert delays == [10, 15, 15]


@pytest.mark.usefixtures("no_jitter")
def test_a_types_own_backoff_wins_over_the_settings(alice: Principal) -> None:
    registry = registry_with(blob_type(retry_base_seconds=50, retry_max_seconds=60))
    wiring = FakeWiring(registry=registry)
    job_id = submit_one(wiring, alice, SubmitJob(type="blob", payload={"size": 1}))
    delays = []
    for _ in range(2):
        claim = claim_of(wiring, job_id)
        now = wiring.store.now
        wiring.execution.fail(claim, ErrorType.HANDLER_ERROR, "boom")
        delays.append((wiring.store.job(job_id).run_at - now).total_seconds())
        wiring.store.advance(100)
    assert delays == [50, 60]


def test_fail_after_max_attempts_is_failed_with_the_last_error(
    wiring: FakeWiring, alice: Principal
) -> None:
    job_id = submit_one(wiring, alice, echo(max_attempts=3))
    for attempt in (1, 2, 3):
        claim = claim_of(wiring, job_id)
        assert claim.attempt == attempt
        wiring.execution.fail(claim, ErrorType.HANDLER_ERROR, f"boom {attempt}")
        wiring.store.advance(3600)

    job = wiring.store.job(job_id)
    assert job.status == "failed"
    assert job.attempts == 3
    assert job.error == {"type": "handler_error", "message": "boom 3"}
    assert job.finished_at is not None
    attempts = wiring.store.attempts_of(job_id)
    assert [a.number for a in attempts] == [1, 2, 3]
    assert {a.status for a in attempts} == {"failed"}
    assert wiring.execution.claim(job_id, "host:1") is None


def test_fail_without_retry_is_final(wiring: FakeWiring, alice: Principal) -> None:
    job_id = submit_one(wiring, alice, echo(max_attempts=10))
    wiring.execution.fail(claim_of(wiring, job_id), ErrorType.TIMEOUT, "slow", retry=False)
    job = wiring.store.job(job_id)
    assert job.status == "failed"
    assert job.error == {"type": "timeout", "message": "slow"}


def test_a_long_error_message_is_cut_to_2000_characters(
    wiring: FakeWiring, alice: Principal
) -> None:
    job_id = submit_one(wiring, alice, echo(max_attempts=1))
    wiring.execution.fail(claim_of(wiring, job_id), ErrorType.HANDLER_ERROR, "e" * 10_000)
    error = wiring.store.job(job_id).error
    assert error is not None
    assert error["message"] == "e" * 2000


def test_a_failure_after_a_cancel_request_ends_canceled(
    wiring: FakeWiring, alice: Principal
) -> None:
    job_id = submit_one(wiring, alice, echo(max_attempts=5))
    claim = claim_of(wiring, job_id)
    wiring.jobs.cancel(alice, job_id)
    wiring.execution.fail(claim, ErrorType.HANDLER_ERROR, "boom")
    assert wiring.store.job(job_id).status == "canceled"


# -- canceled ---------------------------------------------------------------------------------


def test_canceled_ends_a_job_whose_handler_honoured_the_request(
    wiring: FakeWiring, alice: Principal
) -> None:
    job_id = submit_one(wiring, alice, sleep(60))
    claim = claim_of(wiring, job_id)
    wiring.jobs.cancel(alice, job_id)
    now = wiring.store.advance(1)

    job = wiring.execution.canceled(claim)

    assert job is not None
    stored = wiring.store.job(job_id)
    assert stored.status == "canceled"
    assert stored.error == {"type": "canceled", "message": "the job was canceled"}
    assert stored.finished_at == now
    (attempt,) = wiring.store.attempts_of(job_id)
    assert attempt.status == "failed"
    assert attempt.error is not None
    assert attempt.error["type"] == "canceled"


# -- leases and late writes -------------------------------------------------------------------


def test_renew_extends_the_lease_and_reports_a_cancel_request(
    wiring: FakeWiring, alice: Principal
) -> None:
    job_id = submit_one(wiring, alice, echo())
    claim = claim_of(wiring, job_id)
    now = wiring.store.advance(20)
    version = wiring.store.job(job_id).version

    assert wiring.execution.renew(claim) == (True, False)
    job = wiring.store.job(job_id)
    assert job.lease_expires_at == now + timedelta(seconds=30)
    assert job.version == version  # renewing is not a state change

    wiring.jobs.cancel(alice, job_id)
    assert wiring.execution.renew(claim) == (True, True)


def test_renew_of_a_run_that_lost_the_job_says_so(wiring: FakeWiring, alice: Principal) -> None:
    job_id = submit_one(wiring, alice, echo())
    claim = claim_of(wiring, job_id)
    wiring.execution.succeed(claim, {"message": "ok"})
    assert wiring.execution.renew(claim) == (False, False)
    assert wiring.store.job(job_id).lease_expires_at is None


def test_a_late_write_from_a_run_that_lost_its_lease_is_refused(
    wiring: FakeWiring, alice: Principal
) -> None:
    job_id = submit_one(wiring, alice, echo(timeout_seconds=600))
    stale = claim_of(wiring, job_id, "dead:1")
    wiring.store.advance(31)
    assert wiring.scheduling.reclaim_lapsed() == 1
    before = wiring.store.job(job_id)

    assert wiring.execution.succeed(stale, {"message": "late"}) is None
    assert wiring.execution.fail(stale, ErrorType.HANDLER_ERROR, "late") is None
    assert wiring.execution.canceled(stale) is None

    after = wiring.store.job(job_id)
    assert after.status == "queued"
    assert after.result is None
    assert after.version == before.version
    (attempt,) = wiring.store.attempts_of(job_id)
    assert attempt.error is not None
    assert attempt.error["type"] == "worker_lost"


def test_a_late_write_does_not_touch_the_run_that_owns_the_job_now(
    wiring: FakeWiring, alice: Principal
) -> None:
    job_id = submit_one(wiring, alice, echo(timeout_seconds=600))
    stale = claim_of(wiring, job_id, "dead:1")
    wiring.store.advance(31)
    wiring.scheduling.reclaim_lapsed()
    current = claim_of(wiring, job_id, "alive:1")

    assert wiring.execution.succeed(stale, {"message": "late"}) is None
    assert wiring.store.job(job_id).status == "running"

    assert wiring.execution.succeed(current, {"message": "on time"}) is not None
    job = wiring.store.job(job_id)
    assert job.status == "succeeded"
    assert job.result == {"message": "on time"}
    assert [a.status for a in wiring.store.attempts_of(job_id)] == ["failed", "succeeded"]


def test_finishing_reads_again_after_a_concurrent_cancel_request(
    wiring: FakeWiring, alice: Principal
) -> None:
    job_id = submit_one(wiring, alice, echo())
    claim = claim_of(wiring, job_id)
    wiring.store.before_next_commit(lambda: wiring.jobs.cancel(alice, job_id))

    job = wiring.execution.succeed(claim, {"message": "first"})

    assert job is not None
    stored = wiring.store.job(job_id)
    assert stored.cancel_requested is True
    assert stored.status == "succeeded"  # it finished first, so it ends as it finished
    assert stored.result == {"message": "first"}


def test_finishing_gives_up_after_repeated_conflicts(wiring: FakeWiring, alice: Principal) -> None:
    job_id = submit_one(wiring, alice, echo())
    claim = claim_of(wiring, job_id)
    wiring.store.fail_next_commits(StaleDataError("changed"), times=5)

    assert wiring.execution.succeed(claim, {"message": "x"}) is None
    assert wiring.store.job(job_id).status == "running"
