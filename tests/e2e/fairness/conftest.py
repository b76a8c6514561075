"""One stack for the fairness tests, kept for the package: the API, a scheduler (whose
dispatcher fills each queue's window), a worker of two processes on the `default` queue and
one on `long`, with a 2 s lease, so that a killed worker's jobs come back within seconds."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from sqlalchemy import Engine

from tests.e2e.fairness.shared import attempts, runs_on
from tests.services import real_env
from tests.stack import Stack

WINDOW = 100  # HOPPER_DISPATCH_WINDOW's default
PREFETCH = 2  # two pool processes, each taking one message ahead (worker_prefetch_multiplier 1)


@pytest.fixture(scope="package")
def stack(migrated_database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    running = Stack(real_env(HOPPER_LEASE_SECONDS="2"), tmp_path_factory.mktemp("fairness"))
    try:
        running.scheduler()
        running.worker(queues="default", concurrency=PREFETCH)
        running.worker(queues="long", concurrency=2)
        running.web()
        yield running
    finally:
        running.stop()


@dataclass
class KeyedRun:
    """50 jobs of 0.5 s on one concurrency key of limit 2, submitted as the package starts and
    run while its other tests do, over two `long` workers; one of them is killed while it runs
    one of the jobs."""

    tenant_id: str
    killer: threading.Thread
    killed: bool = False


@pytest.fixture(scope="package", autouse=True)
def keyed_run(stack: Stack, db: Engine) -> KeyedRun:
    keys = stack.new_tenant()
    limit = stack.request(
        "PUT", "/v1/concurrency-limits/account-42", keys["admin"], json={"limit": 2}
    )
    assert limit.status_code == 200, limit.text
    doomed = stack.worker(queues="long", concurrency=2)  # the second worker, killed midway
    nap = {"type": "sleep", "payload": {"seconds": 0.5}, "concurrency_key": "account-42"}
    answer = stack.request("POST", "/v1/jobs/batch", keys["submitter"], json={"jobs": [nap] * 50})
    assert answer.status_code == 202, answer.text
    run = KeyedRun(keys["tenant_id"], threading.Thread(target=lambda: None))

    def kill_midway() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if len(attempts(db, run.tenant_id)) >= 10 and runs_on(db, doomed.pid):
                os.killpg(doomed.pid, signal.SIGKILL)  # its runs end when their leases lapse
                run.killed = True
                return
            time.sleep(0.05)

    run.killer = threading.Thread(target=kill_midway, name="kill-midway", daemon=True)
    run.killer.start()
    return run
