"""One stack for the operators' tests (metrics, queue controls), kept for the package: every
process kind serves its metrics on a port of its own, behind a token, and failed
authentications are limited at two a minute, counted in a Redis database of the package's own
(emptied first) so that the metrics test's one 429 is its own."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis
import requests

from tests.services import REDIS_DB, real_env
from tests.stack import Stack, free_port, wait_until

TOKEN = "metrics-token-for-tests-only"


@pytest.fixture(scope="package")
def ports() -> dict[str, int]:
    return {kind: free_port() for kind in ("web", "worker", "webhooks", "scheduler")}


@pytest.fixture(scope="package")
def stack(
    migrated_database: str, ports: dict[str, int], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    url = f"redis://127.0.0.1:6379/{int(REDIS_DB) + 4}"
    redis.Redis.from_url(url).flushdb()
    env = real_env(
        REDIS_URL=url, HOPPER_METRICS_TOKEN=TOKEN, HOPPER_RATE_LIMIT_AUTH_FAILURES="2/minute"
    )
    running = Stack(env, tmp_path_factory.mktemp("operators"))
    metrics_port = "HOPPER_METRICS_PORT"
    try:
        running.web(env={metrics_port: str(ports["web"])})
        running.worker(env={metrics_port: str(ports["worker"])})
        running.worker(queues="webhooks", concurrency=4, env={metrics_port: str(ports["webhooks"])})
        running.scheduler(env={metrics_port: str(ports["scheduler"])})
        wait_until(lambda: all(map(serving, ports.values())), 30, "every process's metrics")
        yield running
    finally:
        running.stop()


def serving(port: int) -> bool:
    """The process on ``port`` is up: its metrics listener answers (a 401 without the token)."""
    try:
        return requests.get(f"http://127.0.0.1:{port}/metrics", timeout=2).status_code == 401
    except requests.RequestException:
        return False
