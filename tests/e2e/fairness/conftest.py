"""One stack for the fairness tests, kept for the package: the API, a scheduler (whose
dispatcher fills each queue's window), a worker of two processes on the `default` queue and
one on `long`, with a 2 s lease, so that a killed worker's jobs come back within seconds."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

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
