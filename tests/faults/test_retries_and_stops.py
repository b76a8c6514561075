"""Retries with backoff, timeouts, cancellation of running jobs (cooperative and not), and
long-polls, on real processes."""

from __future__ import annotations

import itertools
import time
from datetime import datetime

from tests.stack import Stack, wait_until


def submit(stack: Stack, key: str, body: dict) -> dict:
    response = stack.request("POST", "/v1/jobs", key, json=body)
    assert response.status_code == 202, response.text
    return response.json()


def at(timestamp: str) -> datetime:
    return datetime.fromisoformat(timestamp.replace("Z", "+00:00"))


def running(stack: Stack, key: str, job_id: str) -> bool:
    return stack.request("GET", f"/v1/jobs/{job_id}", key).json()["status"] == "running"


def test_retries_timeouts_cancellation_and_long_polls(stack: Stack) -> None:
    stack.web()
    worker = stack.worker(concurrency=2)
    stack.scheduler()
    keys = stack.new_tenant()
    key = keys["submitter"]

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
    print(f"\nbackoff gaps between attempts: {[round(g, 3) for g in gaps]} s")

    # A run past timeout_seconds fails with timeout.
    slow = submit(
        stack,
        key,
        {"type": "sleep", "payload": {"seconds": 30}, "timeout_seconds": 1, "max_attempts": 1},
    )
    done = stack.wait_for_job(slow["id"], key, timeout=20)
    assert done["status"] == "failed"
    assert done["error"]["type"] == "timeout"

    # A running sleep job is canceled within 2 s of the request.
    nap = submit(stack, key, {"type": "sleep", "payload": {"seconds": 60}})
    wait_until(lambda: running(stack, key, nap["id"]), 20, "the sleep job to start")
    asked = time.monotonic()
    response = stack.request("POST", f"/v1/jobs/{nap['id']}/cancel", key)
    assert response.status_code == 202 and response.json()["cancel_requested"] is True
    waited = stack.request("GET", f"/v1/jobs/{nap['id']}?wait=10", key).json()
    assert waited["status"] == "canceled"
    assert time.monotonic() - asked < 2.0

    # A handler that ignores cancellation is stopped at its deadline (grace 1 s), and the worker
    # goes on to take the next job.
    deaf = submit(stack, key, {"type": "stubborn", "payload": {"seconds": 120}})
    wait_until(lambda: running(stack, key, deaf["id"]), 20, "the stubborn job to start")
    asked = time.monotonic()
    assert stack.request("POST", f"/v1/jobs/{deaf['id']}/cancel", key).status_code == 202
    waited = stack.request("GET", f"/v1/jobs/{deaf['id']}?wait=15", key).json()
    assert waited["status"] == "canceled"
    assert time.monotonic() - asked < 4.0
    stuck = submit(
        stack, key, {"type": "stubborn", "payload": {"seconds": 120}, "timeout_seconds": 1}
    )
    assert (
        stack.request("GET", f"/v1/jobs/{stuck['id']}?wait=20", key).json()["error"]["type"]
        == "timeout"
    )
    assert worker.alive()
    after = stack.wait_for_job(
        submit(stack, key, {"type": "echo", "payload": {"message": "next"}})["id"], key
    )
    assert after["status"] == "succeeded"

    # A long-poll answers promptly after the job's end.
    short = submit(stack, key, {"type": "sleep", "payload": {"seconds": 1.5}})
    started = time.monotonic()
    polled = stack.request("GET", f"/v1/jobs/{short['id']}?wait=20", key)
    answered = datetime.now(at(polled.json()["finished_at"]).tzinfo)
    assert polled.json()["status"] == "succeeded"
    assert time.monotonic() - started < 10
    gap = (answered - at(polled.json()["finished_at"])).total_seconds()
    assert gap < 1.0, f"answered {gap:.3f} s after the end: polling, not a notification?"
    print(f"long-poll answered {gap * 1000:.0f} ms after the job's end")
