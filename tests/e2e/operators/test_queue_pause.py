"""Pausing a queue while a downstream is down: for one tenant through the API, for every tenant
from ``hopper queues``. Paused, jobs are still accepted and wait, counted as ``paused``; other
queues and other tenants run on; resuming runs what waited."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from tests.stack import Stack

Tenants = Callable[[], dict[str, str]]
HELD_FOR = 0.5  # after the unpaused work finished: the paused jobs must still be waiting


def submit(stack: Stack, key: str, body: dict[str, Any]) -> str:
    answer = stack.request("POST", "/v1/jobs", key, json=body)
    assert answer.status_code == 202, answer.text
    return str(answer.json()["id"])


def statuses(stack: Stack, key: str, job_ids: list[str]) -> list[str]:
    return [stack.request("GET", f"/v1/jobs/{j}", key).json()["status"] for j in job_ids]


def queue(stack: Stack, key: str, name: str) -> dict[str, Any]:
    answer = stack.request("GET", "/v1/queues", key)
    assert answer.status_code == 200, answer.text
    found: dict[str, Any] = next(q for q in answer.json()["data"] if q["name"] == name)
    return found


ECHO = {"type": "echo", "payload": {"message": "held"}}
SLEEP = {"type": "sleep", "payload": {"seconds": 0.1}}


def test_a_tenants_paused_queue_holds_its_jobs_and_nothing_else(
    stack: Stack, tenants: Tenants
) -> None:
    mine, other = tenants(), tenants()
    paused = stack.request("POST", "/v1/queues/default/pause", mine["admin"])
    assert paused.status_code == 200, paused.text
    assert paused.json()["paused"] is True

    held = [submit(stack, mine["submitter"], ECHO) for _ in range(3)]
    runs = [submit(stack, mine["submitter"], SLEEP), submit(stack, other["submitter"], ECHO)]
    assert stack.wait_for_job(runs[0], mine["reader"])["status"] == "succeeded"
    assert stack.wait_for_job(runs[1], other["reader"])["status"] == "succeeded"
    time.sleep(HELD_FOR)
    assert statuses(stack, mine["reader"], held) == ["queued"] * 3
    default = queue(stack, mine["reader"], "default")
    assert (default["paused"], default["waiting"]["paused"], default["waiting"]["capacity"]) == (
        True,
        3,
        0,
    )
    assert queue(stack, other["reader"], "default")["paused"] is False

    resumed = stack.request("POST", "/v1/queues/default/resume", mine["admin"])
    assert resumed.status_code == 200 and resumed.json()["paused"] is False
    for job_id in held:
        assert stack.wait_for_job(job_id, mine["reader"], timeout=20)["status"] == "succeeded"
    actions = [
        e["action"]
        for e in stack.request("GET", "/v1/audit-events", mine["admin"]).json()["data"]
        if e["target_type"] == "queue"
    ]
    assert actions == ["queue.resume", "queue.pause"]


def test_the_operator_pauses_a_queue_for_every_tenant(stack: Stack, tenants: Tenants) -> None:
    first, second = tenants(), tenants()
    stack.cli("queues", "pause", "default")
    try:
        held = [submit(stack, keys["submitter"], ECHO) for keys in (first, second)]
        ran = submit(stack, first["submitter"], SLEEP)
        assert stack.wait_for_job(ran, first["reader"])["status"] == "succeeded"
        time.sleep(HELD_FOR)
        assert statuses(stack, first["reader"], held[:1]) == ["queued"]
        assert statuses(stack, second["reader"], held[1:]) == ["queued"]
        view = queue(stack, second["reader"], "default")
        assert view["paused_for_every_tenant"] is True and view["waiting"]["paused"] == 1
        listing = stack.cli("queues")
        default_row = next(line for line in listing.splitlines() if line.startswith("default "))
        assert default_row.split()[-1] == "*"
        assert "workers answering the broker: 2" in listing  # the job pool and the deliveries'
        assert "queues default,long" in listing
    finally:
        stack.cli("queues", "resume", "default")
    for job_id, keys in zip(held, (first, second), strict=True):
        assert stack.wait_for_job(job_id, keys["reader"], timeout=20)["status"] == "succeeded"


def test_bulk_retry_after_a_fix_retries_the_selection_only(stack: Stack, tenants: Tenants) -> None:
    keys, other = tenants(), tenants()
    # Fails its first attempt (the downstream was down), succeeds once retried (it is fixed).
    flaky = {"type": "fail", "payload": {"message": "down", "times": 1}, "max_attempts": 1}
    failed = [submit(stack, keys["submitter"], flaky) for _ in range(3)]
    elsewhere = submit(stack, other["submitter"], flaky)
    for job_id, reader in [*((j, keys["reader"]) for j in failed), (elsewhere, other["reader"])]:
        assert stack.wait_for_job(job_id, reader)["status"] == "failed"
    stack.cli(
        "jobs", "retry", "--tenant", keys["tenant_id"], "--status", "failed", "--type", "fail"
    )
    for job_id in failed:
        job = stack.wait_for_job(job_id, keys["reader"])
        assert (job["status"], job["result"]) == ("succeeded", {"attempt": 2})
    assert stack.request("GET", f"/v1/jobs/{elsewhere}", other["reader"]).json()["status"] == (
        "failed"
    )
