"""A queue with due work and no consumer is visible: the metric, the scheduler's log line and
/readyz all name it, and readiness does not fail for it."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import pytest

from tests.receiver import Receiver
from tests.services import real_env
from tests.stack import Stack, wait_until


@pytest.fixture(scope="module")
def stack(migrated_database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    running = Stack(real_env(), tmp_path_factory.mktemp("consumers"))
    try:
        running.web()
        running.worker(queues="default")  # the only worker: nobody delivers webhooks
        running.scheduler()  # its dispatcher hands the jobs to the broker
        yield running
    finally:
        running.stop()


def consumers(stack: Stack) -> dict[str, float]:
    text = stack.request("GET", "/metrics").text
    return {
        q: float(n) for q, n in re.findall(r'hopper_queue_consumers\{queue="(\w+)"\} (\S+)', text)
    }


def test_a_due_webhook_with_no_delivery_worker_is_named_everywhere(stack: Stack) -> None:
    keys = stack.new_tenant()
    receiver = Receiver()
    try:
        hook = stack.request(
            "POST", "/v1/webhook-endpoints", keys["admin"], json={"url": receiver.url}
        ).json()
        job = stack.request(
            "POST",
            "/v1/jobs",
            keys["submitter"],
            json={"type": "echo", "payload": {"message": "m"}},
        ).json()
        assert stack.wait_for_job(job["id"], keys["reader"])["status"] == "succeeded"
        wait_until(lambda: consumers(stack).get("default") == 1.0, 30, "the default worker")
        assert consumers(stack)["webhooks"] == 0.0
        ready = stack.request("GET", "/readyz")
        assert ready.status_code == 200
        assert ready.json()["queues_without_consumer"] == ["webhooks"]  # default has its worker
        scheduler = next(p for p in stack.processes if p.name.startswith("scheduler"))
        wait_until(
            lambda: any(
                line.get("event") == "queue_without_consumer" and line.get("queue") == "webhooks"
                for line in map(_json, scheduler.output().splitlines())
            ),
            40,
            "the scheduler to say so",
            scheduler,
        )
        assert receiver.received == []  # nothing was delivered: the report was true
        stack.request("DELETE", f"/v1/webhook-endpoints/{hook['id']}", keys["admin"])
    finally:
        receiver.close()


def _json(line: str) -> dict:
    try:
        parsed = json.loads(line)
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}
