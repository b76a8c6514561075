"""One stack for the `http` jobs' and the schedules' end-to-end tests, kept for the package: its
start and stop take longer than most of their tests, and neither module's tests disturb the
other's (each has a tenant of its own).

The API; a worker for the job queues; two `http` pools, so that a job whose worker is killed has
another to go to; two schedulers, each serving its metrics, so that every slot has two takers;
and a short lease, so that a killed worker's job is taken back within seconds.

The schedules' tests watch their schedules over seconds of real time: they are made as the
package starts, and run on while the `http` tests do.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests import services
from tests.e2e.http_and_schedules.shared import Running, Scheduled, watched_schedules
from tests.stack import Stack, free_port


@pytest.fixture(scope="package")
def running(migrated_database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    stack = Stack(services.real_env(HOPPER_LEASE_SECONDS="2"), tmp_path_factory.mktemp("stack"))
    try:
        ports = [free_port(), free_port()]
        schedulers = [stack.scheduler(env={"HOPPER_METRICS_PORT": str(p)}) for p in ports]
        stack.worker()
        http_workers = [stack.worker("http", concurrency=4) for _ in range(2)]
        stack.web()  # the others start meanwhile
        yield Running(stack, http_workers, schedulers, ports)
    finally:
        stack.stop()


@pytest.fixture(scope="package")
def stack(running: Running) -> Stack:
    return running.stack


@pytest.fixture(scope="package", autouse=True)
def scheduled(running: Running) -> Iterator[Scheduled]:
    with watched_schedules(running) as watched:
        yield watched
