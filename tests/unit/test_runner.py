"""``workers.runner.JobRunner`` over the fake-backed ``ExecutionService``: a whole run, the
heartbeat that passes on a cancel request or a timeout, and a run that lost its lease."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import marshmallow as ma
import pytest

from domain import queues
from domain.auth import Principal
from domain.commands import SubmitJob
from domain.context import JobContext, PermanentFailure, RetryLater
from domain.job_types import JobType, build_registry
from tests.unit.builders import echo, make_job, sleep
from tests.unit.fakes import FakeStore, FakeWiring, fake_settings
from workers.runner import JobRunner, worker_name

# A short lease makes the heartbeat beat every 0.1 s, so cancellation is noticed at once.
QUICK_LEASE = 0.3
# The handlers below sleep for 30 s: a run under this ceiling was stopped early, and the
# ceiling is far above any stall of a loaded machine.
STOPPED_EARLY = 15.0


class Empty(ma.Schema):
    pass


class Anything(ma.Schema):
    class Meta:
        unknown = ma.INCLUDE


def custom_type(name: str, handler: Callable[[dict[str, Any], JobContext], Any]) -> JobType:
    return JobType(
        name=name,
        description=name,
        queue=queues.DEFAULT,
        payload_schema=Empty,
        result_schema=Anything,
        handler=handler,
    )


def quick_wiring(*extra: JobType, store: FakeStore | None = None) -> FakeWiring:
    registry = build_registry()
    for job_type in extra:
        registry.register(job_type)
    return FakeWiring(
        store=store or FakeStore(),
        registry=registry,
        settings=fake_settings(lease_seconds=QUICK_LEASE),
    )


def runner_of(wiring: FakeWiring) -> JobRunner:
    return JobRunner(wiring.execution, wiring.registry)


def submit_one(wiring: FakeWiring, who: Principal, command: SubmitJob) -> str:
    (job,) = wiring.jobs.submit(who, [command])
    return job.id


@contextmanager
def after(seconds: float, action: Callable[[], None]) -> Iterator[None]:
    timer = threading.Timer(seconds, action)
    timer.start()
    try:
        yield
    finally:
        timer.cancel()
        timer.join()


def timed_run(wiring: FakeWiring, job_id: str) -> float:
    started = time.monotonic()
    runner_of(wiring).run(job_id)
    return time.monotonic() - started


def test_worker_name_is_host_and_pid() -> None:
    assert worker_name() == f"{socket.gethostname()}:{os.getpid()}"


def test_a_run_that_succeeds(wiring: FakeWiring, alice: Principal) -> None:
    job_id = submit_one(wiring, alice, echo("over the wire"))

    runner_of(wiring).run(job_id)

    job = wiring.store.job(job_id)
    assert job.status == "succeeded"
    assert job.result == {"message": "over the wire"}
    (attempt,) = wiring.store.attempts_of(job_id)
    assert attempt.status == "succeeded"
    assert attempt.worker == worker_name()


def test_the_handler_gets_its_context(alice: Principal) -> None:
    seen: list[JobContext] = []

    def handler(payload: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
        seen.append(ctx)
        return {}

    wiring = quick_wiring(custom_type("probe", handler))
    job_id = submit_one(wiring, alice, SubmitJob(type="probe", timeout_seconds=9))

    runner_of(wiring).run(job_id)

    (ctx,) = seen
    assert ctx.job_id == job_id
    assert ctx.attempt == 1
    assert ctx.deadline == wiring.store.now + timedelta(seconds=9)
    assert not ctx.cancellation.requested
    assert wiring.store.job(job_id).status == "succeeded"


def test_a_handler_that_raises_fails_the_attempt_as_handler_error(
    wiring: FakeWiring, alice: Principal
) -> None:
    job_id = submit_one(
        wiring, alice, SubmitJob(type="fail", payload={"message": "kaput"}, max_attempts=2)
    )

    runner_of(wiring).run(job_id)

    job = wiring.store.job(job_id)
    assert job.status == "queued"  # an attempt is left
    assert wiring.store.now <= job.run_at <= wiring.store.now + timedelta(seconds=1)
    (attempt,) = wiring.store.attempts_of(job_id)
    assert attempt.status == "failed"
    assert attempt.error == {"type": "handler_error", "message": "kaput"}

    wiring.store.advance(3600)
    runner_of(wiring).run(job_id)

    job = wiring.store.job(job_id)
    assert job.status == "failed"
    assert job.error == {"type": "handler_error", "message": "kaput"}
    assert [a.number for a in wiring.store.attempts_of(job_id)] == [1, 2]


def test_an_exception_without_a_message_is_named_by_its_type(alice: Principal) -> None:
    def handler(payload: dict[str, Any], ctx: JobContext) -> None:
        raise LookupError

    wiring = quick_wiring(custom_type("mute", handler))
    job_id = submit_one(wiring, alice, SubmitJob(type="mute", max_attempts=1))

    runner_of(wiring).run(job_id)

    assert wiring.store.job(job_id).error == {"type": "handler_error", "message": "LookupError"}


def test_retry_later_retries_after_the_handlers_own_delay(alice: Principal) -> None:
    def handler(payload: dict[str, Any], ctx: JobContext) -> None:
        raise RetryLater("busy", after_seconds=900)

    wiring = quick_wiring(custom_type("busy", handler))
    job_id = submit_one(wiring, alice, SubmitJob(type="busy", max_attempts=2))

    runner_of(wiring).run(job_id)

    job = wiring.store.job(job_id)
    assert job.status == "queued"
    assert job.run_at == wiring.store.now + timedelta(seconds=900)  # not the 1 s backoff
    (attempt,) = wiring.store.attempts_of(job_id)
    assert attempt.error == {"type": "handler_error", "message": "busy"}


def test_retry_later_without_a_delay_keeps_the_backoff(alice: Principal) -> None:
    def handler(payload: dict[str, Any], ctx: JobContext) -> None:
        raise RetryLater("busy")

    wiring = quick_wiring(custom_type("busy", handler))
    job_id = submit_one(wiring, alice, SubmitJob(type="busy", max_attempts=2))

    runner_of(wiring).run(job_id)

    job = wiring.store.job(job_id)
    assert wiring.store.now <= job.run_at <= wiring.store.now + timedelta(seconds=1)


def test_a_permanent_failure_fails_the_job_whatever_attempts_remain(alice: Principal) -> None:
    def handler(payload: dict[str, Any], ctx: JobContext) -> None:
        raise PermanentFailure("no such thing")

    wiring = quick_wiring(custom_type("gone", handler))
    job_id = submit_one(wiring, alice, SubmitJob(type="gone", max_attempts=5))

    runner_of(wiring).run(job_id)

    job = wiring.store.job(job_id)
    assert job.status == "failed"
    assert job.attempts == 1
    assert job.error == {"type": "handler_error", "message": "no such thing"}


def test_a_flaky_handler_succeeds_on_the_attempt_after_its_failures(
    wiring: FakeWiring, alice: Principal
) -> None:
    payload = {"message": "flaky", "times": 2}
    job_id = submit_one(wiring, alice, SubmitJob(type="fail", payload=payload, max_attempts=3))

    for _ in range(3):
        runner_of(wiring).run(job_id)
        wiring.store.advance(3600)

    job = wiring.store.job(job_id)
    assert job.status == "succeeded"
    assert job.result == {"attempt": 3}
    assert [a.status for a in wiring.store.attempts_of(job_id)] == ["failed", "failed", "succeeded"]


def test_a_run_for_a_job_that_is_not_ours_does_nothing(
    wiring: FakeWiring, alice: Principal
) -> None:
    job_id = submit_one(wiring, alice, echo())
    wiring.jobs.cancel(alice, job_id)
    commits = wiring.store.commits

    runner_of(wiring).run(job_id)
    runner_of(wiring).run("job_01jd4b2v6v3cz8f0f2m9k7q1xw")

    assert wiring.store.commits == commits
    assert wiring.store.attempts_of(job_id) == []


def test_a_stored_payload_that_no_longer_loads_is_a_handler_error(
    wiring: FakeWiring, alice: Principal
) -> None:
    job = make_job(
        tenant_id=alice.tenant_id,
        type="sleep",
        queue="long",
        payload={"seconds": "soon"},
        max_attempts=1,
        run_at=wiring.store.now,
        created_at=wiring.store.now,
    )
    wiring.store.put(job)

    runner_of(wiring).run(job.id)

    stored = wiring.store.job(job.id)
    assert stored.status == "failed"
    assert stored.error is not None
    assert stored.error["type"] == "handler_error"
    assert "seconds" in stored.error["message"]


def test_a_cancel_request_stops_a_sleeping_handler_quickly(alice: Principal) -> None:
    wiring = quick_wiring()
    job_id = submit_one(wiring, alice, sleep(30))

    with after(0.1, lambda: wiring.jobs.cancel(alice, job_id)):
        elapsed = timed_run(wiring, job_id)

    assert elapsed < STOPPED_EARLY
    job = wiring.store.job(job_id)
    assert job.status == "canceled"
    assert job.error == {"type": "canceled", "message": "the job was canceled"}
    (attempt,) = wiring.store.attempts_of(job_id)
    assert attempt.status == "failed"
    assert attempt.error is not None
    assert attempt.error["type"] == "canceled"


def test_a_handler_that_finishes_despite_a_cancel_request_succeeds(alice: Principal) -> None:
    wiring = quick_wiring()

    def handler(payload: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
        wiring.jobs.cancel(alice, ctx.job_id)
        return {"done": True}

    wiring.registry.register(custom_type("deaf", handler))
    job_id = submit_one(wiring, alice, SubmitJob(type="deaf"))

    runner_of(wiring).run(job_id)

    job = wiring.store.job(job_id)
    assert job.cancel_requested is True
    assert job.status == "succeeded"
    assert job.result == {"done": True}


def test_a_run_past_its_timeout_is_stopped_and_fails_as_timeout(alice: Principal) -> None:
    # The store's clock runs an hour behind the worker's, so the deadline (claim time + 1 s)
    # has passed by the heartbeat's first beat.
    store = FakeStore(now=datetime.now(UTC) - timedelta(hours=1))
    wiring = quick_wiring(store=store)
    job_id = submit_one(wiring, alice, sleep(30, timeout_seconds=1, max_attempts=1))

    elapsed = timed_run(wiring, job_id)

    assert elapsed < STOPPED_EARLY
    job = wiring.store.job(job_id)
    assert job.status == "failed"
    assert job.error == {"type": "timeout", "message": "ran past 1 s"}
    (attempt,) = wiring.store.attempts_of(job_id)
    assert attempt.error == job.error


def test_a_run_that_lost_its_lease_stops_and_writes_nothing(alice: Principal) -> None:
    wiring = quick_wiring()
    job_id = submit_one(wiring, alice, sleep(30, max_attempts=3))

    def worker_presumed_dead() -> None:
        wiring.store.advance(5)
        assert wiring.scheduling.reclaim_lapsed() == 1

    with after(0.1, worker_presumed_dead):
        elapsed = timed_run(wiring, job_id)

    assert elapsed < STOPPED_EARLY
    job = wiring.store.job(job_id)
    assert job.status == "queued"
    assert job.result is None
    (attempt,) = wiring.store.attempts_of(job_id)
    assert attempt.status == "failed"
    assert attempt.error is not None
    assert attempt.error["type"] == "worker_lost"


def renewed_past(wiring: FakeWiring, job_id: str, moment: datetime, ceiling: float) -> bool:
    """Wait (up to ``ceiling`` seconds) for the job's lease to be renewed beyond ``moment``."""
    deadline = time.monotonic() + ceiling
    while time.monotonic() < deadline:
        lease = wiring.store.job(job_id).lease_expires_at
        if lease is not None and lease > moment:
            return True
        time.sleep(0.01)
    return False


def test_the_heartbeat_keeps_a_long_run_leased(alice: Principal) -> None:
    wiring = quick_wiring()
    reclaimed: list[tuple[bool, int]] = []

    def handler(payload: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
        # Ten seconds pass on the database's clock: the lease taken at the claim (0.3 s) is
        # long gone, and only the heartbeat's renewals keep the run from being reclaimed. The
        # wait is for the renewal itself (it beats every 0.1 s), with a generous ceiling.
        moved_to = wiring.store.advance(10)
        renewed = renewed_past(wiring, ctx.job_id, moved_to, ceiling=10)
        reclaimed.append((renewed, wiring.scheduling.reclaim_lapsed()))
        return {"ok": True}

    wiring.registry.register(custom_type("long_haul", handler))
    job_id = submit_one(wiring, alice, SubmitJob(type="long_haul"))

    runner_of(wiring).run(job_id)

    assert reclaimed == [(True, 0)]
    job = wiring.store.job(job_id)
    assert job.status == "succeeded"
    assert job.result == {"ok": True}


@pytest.mark.parametrize("seconds", [0, 0.01])
def test_short_sleeps_succeed(alice: Principal, seconds: float) -> None:
    wiring = quick_wiring()
    job_id = submit_one(wiring, alice, sleep(seconds))
    runner_of(wiring).run(job_id)
    assert wiring.store.job(job_id).status == "succeeded"
