"""One stack for the fairness tests, kept for the package: the API, a scheduler (whose
dispatcher fills each queue's window) and a worker of two processes on the `default` queue."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.services import real_env
from tests.stack import Stack

WINDOW = 100  # HOPPER_DISPATCH_WINDOW's default
PREFETCH = 2  # two pool processes, each taking one message ahead (worker_prefetch_multiplier 1)


@pytest.fixture(scope="package")
def stack(migrated_database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    running = Stack(real_env(), tmp_path_factory.mktemp("fairness"))
    try:
        running.scheduler()
        running.worker(queues="default", concurrency=PREFETCH)
        running.web()
        yield running
    finally:
        running.stop()
