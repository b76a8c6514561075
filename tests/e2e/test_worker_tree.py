"""`hopper worker` with no -Q: every queue, webhook deliveries included, as one process tree that
stops gracefully on SIGTERM and leaves nothing behind when its parent is killed outright."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from standardwebhooks import Webhook

from domain import queues
from tests.receiver import Receiver
from tests.services import real_env
from tests.stack import Process, Stack, wait_until


@pytest.fixture
def stack(migrated_database: str, tmp_path: Path) -> Iterator[Stack]:
    running = Stack(real_env(), tmp_path)
    try:
        yield running
    finally:
        running.stop()


def descendants(pid: int) -> set[int]:
    found: set[int] = set()
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except FileNotFoundError:
        return found
    for task in tasks:
        try:
            children = Path(f"/proc/{pid}/task/{task}/children").read_text().split()
        except FileNotFoundError:
            continue
        for child in map(int, children):
            found |= {child} | descendants(child)
    return found


def running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


# The prefork pool for the job queues, and a threaded one for each of the others.
POOLS = 1 + len(queues.THREADED_QUEUES)


def every_pool_ready(worker: Process) -> bool:
    """Each pool has said it is ready (a threaded one is ready long before the prefork one has
    forked its processes, and a process forked after its parent died would outlive it)."""
    output = worker.output()
    return max(output.count(" ready."), output.count('ready."')) >= POOLS


def test_the_three_process_kinds_as_named_deliver_a_signed_webhook(stack: Stack) -> None:
    worker = stack.start("worker", "worker")
    stack.scheduler()
    stack.web()  # while the others start
    keys = stack.new_tenant()
    receiver = Receiver()
    try:
        hook = stack.request(
            "POST",
            "/v1/webhook-endpoints",
            keys["admin"],
            json={"url": receiver.url, "event_types": ["job.succeeded"]},
        ).json()
        job = stack.request(
            "POST",
            "/v1/jobs",
            keys["submitter"],
            json={"type": "echo", "payload": {"message": "m"}},
        ).json()
        delivery = receiver.wait_for(1, timeout=60)[0]
        event = Webhook(hook["secret"]).verify(delivery.body, delivery.headers)
        assert event["type"] == "job.succeeded" and event["data"]["id"] == job["id"]
        assert event["data"]["result"] == {"message": "m"}
    finally:
        receiver.close()
    assert worker.alive()


def test_sigkill_of_the_parent_leaves_no_pool_process_alive(stack: Stack) -> None:
    worker = stack.start("worker", "worker", "-c", "2")
    wait_until(lambda: every_pool_ready(worker), 60, "every pool to be ready", worker)
    tree = descendants(worker.pid)
    assert len(tree) >= POOLS + 2, f"every pool and two pool processes, not {tree}"  # it can tell
    os.kill(worker.pid, signal.SIGKILL)
    worker.popen.wait(5)
    wait_until(lambda: not any(running(pid) for pid in tree), 10, "every child to die")


def test_sigterm_lets_both_pools_finish_and_stop(stack: Stack) -> None:
    worker = stack.start("worker", "worker", "-c", "2")
    stack.scheduler()
    stack.web()  # while the pools start
    wait_until(lambda: every_pool_ready(worker), 60, "every pool to be ready", worker)
    keys = stack.new_tenant()
    nap = stack.request(
        "POST", "/v1/jobs", keys["submitter"], json={"type": "sleep", "payload": {"seconds": 2}}
    ).json()
    wait_until(
        lambda: (
            stack.request("GET", f"/v1/jobs/{nap['id']}", keys["reader"]).json()["status"]
            == "running"
        ),
        30,
        "the job to start",
    )
    tree = descendants(worker.pid)
    worker.popen.send_signal(signal.SIGTERM)
    try:
        assert worker.popen.wait(30) == 0
    except subprocess.TimeoutExpired:
        raise AssertionError(f"the worker did not stop:\n{worker.output()}") from None
    assert stack.request("GET", f"/v1/jobs/{nap['id']}", keys["reader"]).json()["status"] == (
        "succeeded"
    )
    deadline = time.monotonic() + 5
    while any(running(pid) for pid in tree) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(running(pid) for pid in tree)
