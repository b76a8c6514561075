"""Retries with backoff, timeouts, cancellation of running jobs (cooperative and not), and
long-polls, on real processes.

Nothing here races a short bound: each step waits for the event itself (a long-poll answers when
the job ends) under a ceiling far above what a loaded machine needs, yet far below what the step
would take if the promise were broken (a 60 s sleep, a 120 s stubborn handler). The backoff is
read exactly from what the database recorded, not timed."""

from __future__ import annotations

import itertools
import json
import statistics
import time
from collections import defaultdict
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.engine import Engine

from tests.stack import Stack, wait_until

FLAKY_JOBS = 20  # enough draws that full jitter cannot hide the schedule's growth by chance
FAILURES = 4  # ceilings base·2^(n-1) capped: 0.2, 0.4, 0.8 and the cap, 1.0
SLACK = 0.002  # timestamps in webhook bodies are to the millisecond


def submit(stack: Stack, key: str, body: dict) -> dict:
    response = stack.request("POST", "/v1/jobs", key, json=body)
    assert response.status_code == 202, response.text
    return response.json()


def at(timestamp: str) -> datetime:
    return datetime.fromisoformat(timestamp.replace("Z", "+00:00"))


def running(stack: Stack, key: str, job_id: str) -> bool:
    return stack.request("GET", f"/v1/jobs/{job_id}", key).json()["status"] == "running"


def long_poll(stack: Stack, key: str, job_id: str) -> dict:
    """The job once it has finished: the long-poll answers at its end (30 s at most)."""
    answer: dict = stack.request("GET", f"/v1/jobs/{job_id}?wait=30", key).json()
    return answer


def ceiling(stack: Stack, failed_attempt: int) -> float:
    base = float(stack.env["HOPPER_RETRY_BASE_SECONDS"])
    cap = float(stack.env["HOPPER_RETRY_MAX_SECONDS"])
    return min(cap, base * 2 ** (failed_attempt - 1))


def backoffs(db: Engine, tenant_id: str) -> dict[int, list[tuple[float, float]]]:
    """Per failed attempt n: (backoff drawn, gap until attempt n+1 started) of every job.

    The backoff is exact: the ``job.started`` event of attempt n+1 holds the job as it was then,
    whose ``run_at`` the failure of attempt n set to its end plus the backoff."""
    with db.connect() as connection:
        attempts = connection.execute(
            text(
                "SELECT a.job_id, a.number, a.started_at, a.finished_at FROM job_attempts a "
                "JOIN jobs j ON j.id = a.job_id WHERE j.tenant_id = :t"
            ),
            {"t": tenant_id},
        ).all()
        bodies = connection.execute(
            text("SELECT body FROM webhook_events WHERE tenant_id = :t AND type = 'job.started'"),
            {"t": tenant_id},
        ).scalars()
        run_at = {
            (data["id"], data["attempts"]): at(data["run_at"])
            for data in (json.loads(body)["data"] for body in bodies)
        }
    by_number = {(row.job_id, row.number): row for row in attempts}
    drawn: dict[int, list[tuple[float, float]]] = defaultdict(list)
    for (job_id, number), row in by_number.items():
        later = by_number.get((job_id, number + 1))
        if later is not None:
            backoff = (run_at[(job_id, number + 1)] - row.finished_at).total_seconds()
            gap = (later.started_at - row.finished_at).total_seconds()
            drawn[number].append((backoff, gap))
    return drawn


def check_backoff_schedule(stack: Stack, db: Engine, keys: dict[str, str]) -> None:
    """Flaky jobs succeed after their failures, each retry waiting a full-jitter backoff: a
    uniform draw below base·2^(n-1), capped, and never run before it."""
    hook = stack.request(
        "POST",
        "/v1/webhook-endpoints",
        keys["admin"],
        json={"url": "http://127.0.0.1:9/h", "event_types": ["job.started"]},
    )
    assert hook.status_code == 201, hook.text
    flaky = {"type": "fail", "payload": {"message": "not yet", "times": FAILURES}}
    batch = {"jobs": [{**flaky, "max_attempts": FAILURES + 1}] * FLAKY_JOBS}
    answer = stack.request("POST", "/v1/jobs/batch", keys["submitter"], json=batch)
    assert answer.status_code == 202, answer.text
    for job in answer.json()["data"]:
        done = stack.wait_for_job(job["id"], keys["submitter"], timeout=120)
        assert done["status"] == "succeeded" and done["result"] == {"attempt": FAILURES + 1}
    drawn = backoffs(db, keys["tenant_id"])
    # The deliveries go with the endpoint: nothing is left pending for later tests.
    stack.request("DELETE", f"/v1/webhook-endpoints/{hook.json()['id']}", keys["admin"])

    assert sorted(drawn) == list(range(1, FAILURES + 1))
    for number, samples in drawn.items():
        top = ceiling(stack, number)
        assert len(samples) == FLAKY_JOBS
        assert all(-SLACK <= b <= top + SLACK for b, _ in samples), (number, top, samples)
        assert all(gap >= b - SLACK for b, gap in samples), "a retry ran before its backoff"
        # Uniform below the ceiling: the mean of 20 draws is within 5 standard deviations.
        assert 0.15 * top <= statistics.mean(b for b, _ in samples) <= 0.85 * top
    for number in range(2, FAILURES):  # each ceiling doubles: draws reach past the one before
        assert max(b for b, _ in drawn[number]) > ceiling(stack, number - 1)
    means = [round(statistics.mean(b for b, _ in drawn[n]), 3) for n in sorted(drawn)]
    print(f"\nmean backoff after each failure: {means} s")


def test_retries_timeouts_cancellation_and_long_polls(stack: Stack, db: Engine) -> None:
    stack.web()
    worker = stack.worker(concurrency=2)
    stack.scheduler()
    keys = stack.new_tenant()
    key = keys["submitter"]

    check_backoff_schedule(stack, db, keys)

    # A fail job with times 2 succeeds on its third attempt, after backoff gaps.
    flaky = submit(
        stack,
        key,
        {"type": "fail", "payload": {"message": "not yet", "times": 2}, "max_attempts": 5},
    )
    done = stack.wait_for_job(flaky["id"], key)
    assert done["status"] == "succeeded" and done["result"] == {"attempt": 3}
    attempts = stack.request("GET", f"/v1/jobs/{flaky['id']}/attempts", key).json()["data"]
    assert [(a["number"], a["status"]) for a in attempts] == [
        (1, "failed"),
        (2, "failed"),
        (3, "succeeded"),
    ]
    gaps = [
        (at(later["started_at"]) - at(earlier["finished_at"])).total_seconds()
        for earlier, later in itertools.pairwise(attempts)
    ]
    assert all(gap > 0 for gap in gaps), gaps

    # A run past timeout_seconds fails with timeout.
    slow = submit(
        stack,
        key,
        {"type": "sleep", "payload": {"seconds": 30}, "timeout_seconds": 1, "max_attempts": 1},
    )
    done = stack.wait_for_job(slow["id"], key, timeout=20)
    assert done["status"] == "failed"
    assert done["error"]["type"] == "timeout"

    # A running sleep job of 60 s is canceled: it ends long before its sleep would.
    nap = submit(stack, key, {"type": "sleep", "payload": {"seconds": 60}})
    wait_until(lambda: running(stack, key, nap["id"]), 20, "the sleep job to start")
    asked = time.monotonic()
    response = stack.request("POST", f"/v1/jobs/{nap['id']}/cancel", key)
    assert response.status_code == 202 and response.json()["cancel_requested"] is True
    waited = long_poll(stack, key, nap["id"])
    assert waited["status"] == "canceled"
    print(f"a cooperative handler stopped {time.monotonic() - asked:.2f} s after the cancel")

    # A handler that ignores cancellation is stopped at its deadline (grace 1 s), and the worker
    # goes on to take the next job.
    deaf = submit(stack, key, {"type": "stubborn", "payload": {"seconds": 120}})
    wait_until(lambda: running(stack, key, deaf["id"]), 20, "the stubborn job to start")
    asked = time.monotonic()
    assert stack.request("POST", f"/v1/jobs/{deaf['id']}/cancel", key).status_code == 202
    waited = long_poll(stack, key, deaf["id"])
    assert waited["status"] == "canceled"  # within 30 s: its process ended, not its sleep
    print(f"a stubborn handler was stopped {time.monotonic() - asked:.2f} s after the cancel")
    stuck = submit(
        stack, key, {"type": "stubborn", "payload": {"seconds": 120}, "timeout_seconds": 1}
    )
    assert long_poll(stack, key, stuck["id"])["error"]["type"] == "timeout"
    assert worker.alive()
    after = stack.wait_for_job(
        submit(stack, key, {"type": "echo", "payload": {"message": "next"}})["id"], key
    )
    assert after["status"] == "succeeded"

    # A long-poll answers at the job's end, not at the end of its wait (30 s): the answer
    # comes well inside the wait, after a sleep of 1.5 s.
    short = submit(stack, key, {"type": "sleep", "payload": {"seconds": 1.5}})
    polled = stack.request("GET", f"/v1/jobs/{short['id']}?wait=30", key)
    answered = datetime.now(at(polled.json()["finished_at"]).tzinfo)
    assert polled.json()["status"] == "succeeded"
    gap = (answered - at(polled.json()["finished_at"])).total_seconds()
    assert gap < 15, f"answered {gap:.3f} s after the end: woken by the wait's end, not the job's"
    print(f"long-poll answered {gap * 1000:.0f} ms after the job's end")
