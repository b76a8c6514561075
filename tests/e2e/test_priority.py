"""On RabbitMQ, a high-priority job overtakes normal ones waiting on the same queue."""

from __future__ import annotations

from pathlib import Path

from tests.services import real_env
from tests.stack import Stack, wait_until


def test_high_priority_starts_before_the_queue_of_normal_jobs(
    migrated_database: str, tmp_path: Path
) -> None:
    stack = Stack(real_env(), tmp_path)
    try:
        stack.web()
        stack.scheduler()
        keys = stack.new_tenant()
        key = keys["submitter"]
        normal = [{"type": "echo", "payload": {"message": str(i)}} for i in range(200)]
        queued = stack.request("POST", "/v1/jobs/batch", key, json={"jobs": normal})
        assert queued.status_code == 202
        normal_ids = [job["id"] for job in queued.json()["data"]]
        urgent = stack.request(
            "POST",
            "/v1/jobs",
            key,
            json={"type": "echo", "payload": {"message": "now"}, "priority": "high"},
        ).json()

        stack.worker(queues="default", concurrency=1)
        wait_until(
            lambda: (
                stack.request("GET", "/v1/jobs?status=succeeded&limit=100", key).json()["data"]
                != []
                and _unfinished(stack, key) == 0
            ),
            120,
            "all 201 jobs to finish",
        )
        started = {job["id"]: job["started_at"] for job in _all_jobs(stack, key)}
        overtaken = sum(1 for job_id in normal_ids if started[job_id] > started[urgent["id"]])
        assert overtaken >= 190, f"the high-priority job started before only {overtaken} of 200"
    finally:
        stack.stop()


def _all_jobs(stack: Stack, key: str) -> list[dict]:
    jobs, path = [], "/v1/jobs?limit=100"
    while path:
        page = stack.request("GET", path, key)
        jobs += page.json()["data"]
        cursor = page.json()["next_cursor"]
        path = f"/v1/jobs?limit=100&cursor={cursor}" if cursor else ""
    return jobs


def _unfinished(stack: Stack, key: str) -> int:
    return sum(1 for job in _all_jobs(stack, key) if job["status"] in ("queued", "running"))
