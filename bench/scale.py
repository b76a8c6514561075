"""Reads at scale: the list page and /metrics of a Hopper whose database holds 1,000,000 jobs
across 100 tenants (tests/scale.py builds it, in a database of its own), at a steady pace."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests
from sqlalchemy import create_engine

from bench.figures import Figure
from bench.paced import paced
from bench.stacks import hopper
from tests import scale
from tests.stack import Stack

LIST_PER_SECOND = 50
METRICS_PER_SECOND = 5


@contextmanager
def scaled(logs: Path) -> Iterator[tuple[Stack, str]]:
    """A web process on a database at scale, and a reader key of one of its tenants."""
    with scale.own_database("hopper_bench_scale") as url:
        stack = hopper(logs, {"DATABASE_URL": url})
        engine = create_engine(url)
        seconds = scale.fill(engine)
        engine.dispose()
        print(f"{scale.JOBS:,} jobs generated in {seconds:.0f} s", flush=True)
        try:
            stack.web()
            key = stack.cli(
                "keys", "create", "--tenant", "scale-42", "--role", "reader", "--name", "bench"
            ).strip()
            yield stack, key
        finally:
            stack.stop()


def latencies(url: str, key: str | None, per_second: float, seconds: float) -> Figure:
    """GET `url` at a steady `per_second`; each answer's latency."""
    local = threading.local()
    headers = {"Authorization": f"Bearer {key}"} if key else {}

    def send() -> str:
        if not hasattr(local, "session"):
            local.session = requests.Session()
        started = time.perf_counter()
        answer = local.session.get(url, headers=headers, timeout=30)
        took = (time.perf_counter() - started) * 1000
        assert answer.status_code == 200, answer.text
        return str(took)

    return Figure.of_spans([float(ms) for ms in paced(send, per_second, seconds)])


def list_page(stack: Stack, key: str, seconds: float) -> Figure:
    return latencies(f"{stack.base_url}/v1/jobs?limit=20", key, LIST_PER_SECOND, seconds)


def metrics(stack: Stack, seconds: float) -> Figure:
    return latencies(f"{stack.base_url}/metrics", None, METRICS_PER_SECOND, seconds)
