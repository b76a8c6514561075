"""Hopper beside the bare peers of its hot paths, on this machine, in one run: each scenario is
repeated (3 times by default), Hopper's and the peer's runs interleaved, and the table gives
the medians and the ratio Hopper / peer. Everything runs on 127.0.0.1: PostgreSQL, RabbitMQ and
Redis as the tests use them, in a database and vhost of the bench's own.

    make bench            # or: .venv/bin/python -m bench [--repeat N] [--seconds S]

Load comes from wrk (32 connections unless a scenario says otherwise). Machines are noisy: read
medians and ratios, not single numbers.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

from bench import scenarios
from bench.report import table
from bench.scenarios import Figure
from bench.stacks import Peers, fresh_database, hopper, purge
from domain import queues


def machine() -> str:
    cpus = os.cpu_count()
    with open("/proc/meminfo") as meminfo:
        total_kib = int(meminfo.readline().split()[1])
    cpu = platform.processor() or platform.machine()
    memory = f"{total_kib / 2**20:.0f} GiB"
    return f"{cpu}, {cpus} cores, {memory}, Python {platform.python_version()}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs of each figure (median)")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each load run")
    parser.add_argument("--drain", type=int, default=20_000, help="jobs in each drain run")
    args = parser.parse_args(argv)

    db = fresh_database()
    figures: dict[str, list[Figure]] = defaultdict(list)
    with tempfile.TemporaryDirectory(prefix="hopper-bench-") as logs:
        stack, peers = hopper(Path(logs)), Peers(Path(logs))
        try:
            stack.web()
            stack.scheduler()
            peers.web()
            keys = stack.new_tenant()
            submitter, reader = keys["submitter"], keys["reader"]
            job = stack.request("POST", "/v1/jobs", submitter, json=scenarios.ECHO).json()["id"]
            purge(queues.DEFAULT)
            for run in range(args.repeat):
                print(f"run {run + 1} of {args.repeat}", file=sys.stderr)
                s = args.seconds
                figures["submit"].append(scenarios.submit_hopper(stack, submitter, db, s))
                figures["submit peer"].append(scenarios.submit_peer(peers, db, s))
                figures["batch"].append(scenarios.batch_hopper(stack, submitter, db, s))
                figures["healthz"].append(scenarios.get(f"{stack.base_url}/healthz", None, s))
                figures["get"].append(scenarios.get(f"{stack.base_url}/v1/jobs/{job}", reader, s))
                figures["list"].append(
                    scenarios.get(f"{stack.base_url}/v1/jobs?limit=20", reader, s)
                )
                figures["drain"].append(scenarios.drain_hopper(stack, submitter, db, args.drain))
                figures["drain peer"].append(scenarios.drain_peer(peers, db, args.drain))
        finally:
            stack.stop()
            peers.stop()
            db.dispose()

    print(f"\nHopper beside its bare peers: medians of {args.repeat} runs on {machine()}\n")
    print(
        table(
            [
                (
                    "`POST /v1/jobs`, 32 connections",
                    "req/s",
                    figures["submit"],
                    "Flask + Core + kombu",
                    figures["submit peer"],
                ),
                (
                    f"`POST /v1/jobs/batch` ({scenarios.BATCH_SIZE} a request, 4 connections)",
                    "jobs/s",
                    figures["batch"],
                    "",
                    [],
                ),
                (
                    "`GET /v1/jobs/{id}`, 32 connections",
                    "req/s",
                    figures["get"],
                    "`GET /healthz`",
                    figures["healthz"],
                ),
                (
                    "`GET /v1/jobs?limit=20`, 32 connections",
                    "req/s",
                    figures["list"],
                    "`GET /healthz`",
                    figures["healthz"],
                ),
                (
                    f"worker drain of {args.drain:,} `echo` jobs, 2 processes",
                    "jobs/s",
                    figures["drain"],
                    "bare Celery + one UPDATE",
                    figures["drain peer"],
                ),
            ]
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
