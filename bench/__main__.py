"""Latency of a real Hopper (gunicorn, a celery worker, the scheduler on PostgreSQL and
RabbitMQ, all on 127.0.0.1), each figure beside the bare baseline measured in the same run:
``GET /healthz``, which goes through the same server and app but touches nothing.

    make bench            # or: .venv/bin/python -m bench [--requests N]

Machines are noisy: read medians and ratios, not single numbers.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from sqlalchemy import create_engine, text

from tests.services import DATABASE_URL, real_env
from tests.stack import Stack


def percentile(samples: list[float], share: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def timed(call: Callable[[], object], count: int) -> list[float]:
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        call()
        samples.append(time.perf_counter() - started)
    return samples


def row(name: str, samples: list[float], baseline: float | None) -> str:
    median = statistics.median(samples) * 1000
    p95 = percentile(samples, 0.95) * 1000
    ratio = f"{median / baseline:5.1f}x" if baseline else "    -"
    return f"{name:<34} {len(samples):>6} {median:>9.2f} {p95:>9.2f} {ratio:>8}"


def ensure_schema() -> None:
    engine = create_engine(DATABASE_URL)
    with engine.begin() as connection:
        connection.execute(text("SELECT 1"))
    engine.dispose()


def concurrent_submits(
    stack: Stack, key: str, threads: int, seconds: float
) -> tuple[list[float], float]:
    samples: list[float] = []
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def loop() -> None:
        body = {"type": "echo", "payload": {"message": "load"}}
        while time.monotonic() < stop:
            started = time.perf_counter()
            response = stack.request("POST", "/v1/jobs", key, json=body)
            elapsed = time.perf_counter() - started
            assert response.status_code == 202, response.text
            with lock:
                samples.append(elapsed)

    workers = [threading.Thread(target=loop) for _ in range(threads)]
    started = time.monotonic()
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    return samples, len(samples) / (time.monotonic() - started)


def long_poll_gaps(stack: Stack, key: str, count: int) -> list[float]:
    """How long after a job's end its long-poll answers (the target is under 100 ms)."""
    gaps = []
    for _ in range(count):
        job = stack.request(
            "POST", "/v1/jobs", key, json={"type": "sleep", "payload": {"seconds": 0.3}}
        )
        answer = stack.request("GET", f"/v1/jobs/{job.json()['id']}?wait=20", key)
        answered = time.time()
        finished = datetime.fromisoformat(answer.json()["finished_at"].replace("Z", "+00:00"))
        gaps.append(max(0.0, answered - finished.timestamp()))
    return gaps


def end_to_end(stack: Stack, key: str, count: int) -> list[float]:
    """From the submission's answer to the job's end, through the broker and a worker."""
    spans = []
    for _ in range(count):
        started = time.time()
        job = stack.request(
            "POST", "/v1/jobs", key, json={"type": "echo", "payload": {"message": "e2e"}}
        )
        answer = stack.request("GET", f"/v1/jobs/{job.json()['id']}?wait=20", key).json()
        finished = datetime.fromisoformat(answer["finished_at"].replace("Z", "+00:00"))
        spans.append(finished.timestamp() - started)
    return spans


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=300, help="requests per sequential figure")
    parser.add_argument("--seconds", type=float, default=5.0, help="length of the concurrent load")
    args = parser.parse_args(argv)

    ensure_schema()
    with tempfile.TemporaryDirectory() as logs:
        stack = Stack(
            real_env(
                HOPPER_RATE_LIMIT_DEFAULT="100000/second", HOPPER_RATE_LIMIT_CREATE="100000/second"
            ),
            Path(logs),
        )
        try:
            stack.cli("migrate")
            stack.web()
            stack.worker(concurrency=2)
            stack.scheduler()
            keys = stack.new_tenant()
            key = keys["submitter"]
            job_id = stack.request(
                "POST", "/v1/jobs", key, json={"type": "echo", "payload": {"message": "x"}}
            ).json()["id"]
            for _ in range(50):  # warm connections and code paths
                stack.request("GET", "/healthz")
                stack.request("GET", f"/v1/jobs/{job_id}", key)

            n = args.requests
            baseline = timed(lambda: stack.request("GET", "/healthz"), n)
            base = statistics.median(baseline) * 1000
            results = [
                ("GET /healthz (baseline)", baseline),
                (
                    "GET /v1/jobs/{id}",
                    timed(lambda: stack.request("GET", f"/v1/jobs/{job_id}", key), n),
                ),
                (
                    "GET /v1/jobs?limit=20",
                    timed(lambda: stack.request("GET", "/v1/jobs?limit=20", key), n),
                ),
                (
                    "POST /v1/jobs",
                    timed(
                        lambda: stack.request(
                            "POST",
                            "/v1/jobs",
                            key,
                            json={"type": "echo", "payload": {"message": "b"}},
                        ),
                        n,
                    ),
                ),
            ]
            load, rate = concurrent_submits(stack, key, threads=8, seconds=args.seconds)
            results.append(("POST /v1/jobs, 8 clients at once", load))
            results.append(("long-poll: answer after job end", long_poll_gaps(stack, key, 30)))
            results.append(("submit to end (echo, via broker)", end_to_end(stack, key, 50)))
        finally:
            stack.stop()

    print(f"\n{'figure':<34} {'n':>6} {'median ms':>9} {'p95 ms':>9} {'vs base':>8}")
    for name, samples in results:
        print(row(name, samples, base if not name.startswith(("long-poll", "submit to")) else None))
    print(f"\nthroughput under 8 concurrent clients: {rate:.0f} submissions/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
