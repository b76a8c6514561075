"""Scaling down at any time: SIGTERM to a worker lets what it runs finish within
``HOPPER_WORKER_GRACE_SECONDS``, then hands the rest back at once, to run again on another
worker without counting toward ``max_attempts`` and without waiting for the lease (120 s here,
far beyond the test's time)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from tests.services import real_env
from tests.stack import Stack, wait_until

GRACE = 2.0
SHORT, LONG = 1.5, 3.0  # a short job ends within the grace; a long one does not
STOPPING = {"HOPPER_LEASE_SECONDS": "120", "HOPPER_WORKER_GRACE_SECONDS": str(GRACE)}


@pytest.fixture
def stack(migrated_database: str, tmp_path: Path) -> Iterator[Stack]:
    running = Stack(real_env(**STOPPING), tmp_path)
    try:
        running.web()
        running.scheduler()
        yield running
    finally:
        running.stop()


def test_sigterm_finishes_short_jobs_and_hands_back_long_ones_at_once(stack: Stack) -> None:
    keys = stack.new_tenant()
    first = stack.worker(concurrency=6)
    wait_until(lambda: "ready." in first.output(), 30, "the first worker", first)
    seconds = [SHORT] * 3 + [LONG] * 3
    job_ids = [submit_sleep(stack, keys["submitter"], s) for s in seconds]
    wait_until(lambda: all_running(stack, keys["reader"], job_ids), 30, "six jobs running", first)

    second = stack.worker(concurrency=6)
    signalled = time.time()
    first.terminate()
    jobs = {job_id: stack.wait_for_job(job_id, keys["reader"], timeout=30) for job_id in job_ids}

    assert [job["status"] for job in jobs.values()] == ["succeeded"] * 6, stack.logs()
    assert second.alive()
    first.finish(time.monotonic() + 10)
    assert first.popen.returncode == 0, first.output()[-3000:]
    for job_id, length in zip(job_ids, seconds, strict=True):
        attempts = stack.request("GET", f"/v1/jobs/{job_id}/attempts", keys["reader"]).json()
        runs = attempts["data"]
        if length == SHORT:
            assert [run["status"] for run in runs] == ["succeeded"]
            continue
        handed_back, again = runs
        assert handed_back["error"]["type"] == "worker_lost"
        assert "handed back" in handed_back["error"]["message"]
        assert again["status"] == "succeeded"
        assert again["worker"] != handed_back["worker"]
        restarted = parse(again["started_at"]) - signalled
        assert GRACE - 0.5 <= restarted <= 15, restarted
        assert jobs[job_id]["attempts"] == 1  # the handed-back attempt did not count
    assert "worker_stopped_after_grace" in first.log_path.read_text()


def submit_sleep(stack: Stack, key: str, seconds: float) -> str:
    body = {"type": "sleep", "payload": {"seconds": seconds}, "max_attempts": 1}
    answer = stack.request("POST", "/v1/jobs", key, json=body)
    assert answer.status_code == 202, answer.text
    return str(answer.json()["id"])


def all_running(stack: Stack, key: str, job_ids: list[str]) -> bool:
    statuses = [stack.request("GET", f"/v1/jobs/{j}", key).json()["status"] for j in job_ids]
    return statuses == ["running"] * len(job_ids)


def parse(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
