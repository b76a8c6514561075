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
import signal
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

from sqlalchemy.engine import Engine

from bench import dbcost, flows, report, scale, scenarios
from bench.figures import Figure
from bench.stacks import Peers, fresh_database, hopper, purge
from domain import queues

# Scenarios run in groups, so that one hot path can be measured alone while it is reworked.
GROUPS = ("submit", "batch", "reads", "drain", "e2e", "webhooks", "scale", "cost")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs of each figure (median)")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each load run")
    parser.add_argument("--drain", type=int, default=20_000, help="jobs in each drain run")
    parser.add_argument(
        "--only",
        type=lambda value: set(value.split(",")),
        default=set(GROUPS),
        help=f"comma-separated groups to run, of: {', '.join(GROUPS)} (default: all)",
    )
    args = parser.parse_args(argv)
    if unknown := args.only - set(GROUPS):
        parser.error(f"unknown groups: {', '.join(sorted(unknown))}")
    # A stopped bench stops what it started (the processes run in sessions of their own).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    db = fresh_database()
    runs: dict[str, list[Figure]] = defaultdict(list)
    extra: dict[str, list[float]] = defaultdict(list)
    with tempfile.TemporaryDirectory(prefix="hopper-bench-") as temporary:
        logs = Path(temporary)
        stack, peers = hopper(logs), Peers(logs)
        try:
            web, scheduler = stack.web(), stack.scheduler()
            peers.web()
            keys = stack.new_tenant()
            submitter, reader = keys["submitter"], keys["reader"]
            job = stack.request("POST", "/v1/jobs", submitter, json=scenarios.ECHO).json()["id"]
            purge(queues.DEFAULT)
            for run in range(args.repeat):
                print(f"run {run + 1} of {args.repeat}", file=sys.stderr)
                s, url, only = args.seconds, stack.base_url, args.only
                if "submit" in only:
                    runs["submit"].append(scenarios.submit_hopper(stack, submitter, db, s))
                    runs["submit peer"].append(scenarios.submit_peer(peers, db, s))
                if "batch" in only:
                    runs["batch"].append(scenarios.batch_hopper(stack, submitter, db, s))
                if "reads" in only:
                    runs["healthz"].append(scenarios.get(f"{url}/healthz", None, s))
                    runs["get"].append(scenarios.get(f"{url}/v1/jobs/{job}", reader, s))
                    runs["list"].append(scenarios.get(f"{url}/v1/jobs?limit=20", reader, s))
                if "drain" in only:
                    runs["drain"].append(scenarios.drain_hopper(stack, submitter, db, args.drain))
                    runs["drain peer"].append(scenarios.drain_peer(peers, db, args.drain))
                if "e2e" in only:
                    spans, pool_mb = flows.end_to_end(stack, submitter, db, 100, s)
                    runs["e2e"].append(Figure.of_spans(spans))
                    extra["pool MB"].append(pool_mb)
                if "webhooks" in only:
                    latency, rate = flows.webhooks(stack, keys, 8, 500, s)
                    runs["webhook latency"].append(Figure.of_spans(latency))
                    extra["deliveries/s"].append(rate)
            extra["web MB"] = [max(flows.peak_rss_mb(web.pid).values())]
            extra["scheduler MB"] = [flows.peak_rss_mb(scheduler.pid)[scheduler.pid]]
        finally:
            stack.stop()
            peers.stop()
        if "scale" in args.only:
            measure_scale(args, logs / "scale", runs)
        cost = measure_cost(db, logs) if "cost" in args.only else None
    db.dispose()
    print(report.render(args, runs, extra, cost))
    return 0


def measure_scale(args: argparse.Namespace, logs: Path, runs: dict[str, list[Figure]]) -> None:
    """The list page and /metrics, paced, on a database of 1,000,000 jobs (built once)."""
    logs.mkdir()
    with scale.scaled(logs) as (stack, reader):
        for _ in range(args.repeat):
            runs["list at scale"].append(scale.list_page(stack, reader, args.seconds))
            runs["metrics at scale"].append(scale.metrics(stack, args.seconds))


def measure_cost(db: Engine, logs: Path) -> dbcost.Cost:
    """A stack of its own, every process counting what it asks of PostgreSQL."""
    counts, cost_logs = logs / "counts", logs / "cost"
    counts.mkdir()
    cost_logs.mkdir()
    stack = hopper(cost_logs, dbcost.instrumented_env(counts))
    try:
        stack.web()
        stack.scheduler()
        stack.worker(queues.DEFAULT, concurrency=2)
        keys = stack.new_tenant()
        return dbcost.per_job(stack, keys["submitter"], db, counts, 1000)
    finally:
        stack.stop()


if __name__ == "__main__":
    sys.exit(main())
