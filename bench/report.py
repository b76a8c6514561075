"""The table: each figure's median over the runs, beside its peer's, and the ratio."""

from __future__ import annotations

import argparse
import os
import platform
import statistics
from collections.abc import Sequence

from bench.dbcost import Cost
from bench.figures import Figure
from bench.scale import LIST_PER_SECOND, METRICS_PER_SECOND
from bench.scenarios import BATCH_SIZE

Row = tuple[str, str, Sequence[Figure], str, Sequence[Figure]]


def _median(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def _cell(figures: Sequence[Figure], unit: str) -> str:
    if not figures:
        return "—"
    rate = _median([f.per_second for f in figures])
    p50, p95, p99 = (
        _median([getattr(f, name) for f in figures]) for name in ("p50_ms", "p95_ms", "p99_ms")
    )
    parts = [] if rate is None else [f"{rate:,.0f} {unit}"]
    if p50 is not None and p95 is not None and p99 is not None:
        parts.append(f"p50 {p50:.1f} ms, p95 {p95:.1f} ms, p99 {p99:.1f} ms")
    return ", ".join(parts)


def ratio(ours: Sequence[Figure], peer: Sequence[Figure]) -> str:
    mine = _median([f.per_second for f in ours])
    theirs = _median([f.per_second for f in peer])
    if mine is None or theirs is None:
        return "—"
    return f"{mine / theirs:.2f}x"


def table(rows: Sequence[Row]) -> str:
    """`rows`: (path, unit, Hopper's figures, the peer's name, the peer's figures)."""
    lines = ["| path | Hopper | bare peer, same run | ratio |", "| --- | --- | --- | --- |"]
    for path, unit, ours, peer_name, peer in rows:
        theirs = f"{peer_name}: {_cell(peer, unit)}" if peer else "—"
        lines.append(f"| {path} | {_cell(ours, unit)} | {theirs} | {ratio(ours, peer)} |")
    return "\n".join(lines)


def machine() -> str:
    with open("/proc/meminfo") as meminfo:
        total_kib = int(meminfo.readline().split()[1])
    cpu = platform.processor() or platform.machine()
    memory = f"{total_kib / 2**20:.0f} GiB"
    return f"{cpu}, {os.cpu_count()} cores, {memory}, Python {platform.python_version()}"


def render(
    args: argparse.Namespace,
    runs: dict[str, list[Figure]],
    extra: dict[str, list[float]],
    cost: Cost | None,
) -> str:
    rows: list[Row] = [
        (
            "`POST /v1/jobs`, 32 connections",
            "req/s",
            runs["submit"],
            "Flask + Core + kombu",
            runs["submit peer"],
        ),
        (
            f"`POST /v1/jobs/batch` ({BATCH_SIZE} a request, 4 connections)",
            "jobs/s",
            runs["batch"],
            "",
            [],
        ),
        (
            "`GET /v1/jobs/{id}`, 32 connections",
            "req/s",
            runs["get"],
            "`GET /healthz`",
            runs["healthz"],
        ),
        (
            "`GET /v1/jobs?limit=20`, 32 connections",
            "req/s",
            runs["list"],
            "`GET /healthz`",
            runs["healthz"],
        ),
        (
            f"worker drain of {args.drain:,} `echo` jobs, 2 processes",
            "jobs/s",
            runs["drain"],
            "bare Celery + one UPDATE",
            runs["drain peer"],
        ),
        ("end to end at 100 jobs/s (created → finished)", "", runs["e2e"], "", []),
        ("webhook: job end → delivery received (10 jobs/s)", "", runs["webhook latency"], "", []),
        (
            f"`GET /v1/jobs?limit=20` on 1,000,000 jobs, {LIST_PER_SECOND} a second",
            "",
            runs["list at scale"],
            "",
            [],
        ),
        (
            f"`GET /metrics` on 1,000,000 jobs, {METRICS_PER_SECOND} a second",
            "",
            runs["metrics at scale"],
            "",
            [],
        ),
    ]
    heading = (
        f"Hopper beside its bare peers: medians of {args.repeat} interleaved runs, "
        f"{args.seconds:.0f} s each, on {machine()}"
    )
    lines = [f"\n{heading}\n", table([row for row in rows if row[2]]), ""]
    if extra.get("deliveries/s"):
        rate = statistics.median(extra["deliveries/s"])
        lines.append(f"- webhook deliveries to 8 endpoints: {rate:,.0f} a second")
    memory = [
        f"{label} {max(extra[name]):.0f} MB"
        for label, name in (
            ("web process", "web MB"),
            ("job pool process", "pool MB"),
            ("scheduler", "scheduler MB"),
        )
        if extra.get(name)
    ]
    lines.append(f"- peak RSS: {', '.join(memory)}")
    if cost is not None:
        per_job = (
            f"{cost.statements:.1f} statements, {cost.round_trips:.1f} round trips, "
            f"{cost.wal_bytes:,.0f} WAL bytes"
        )
        lines.append(
            f"- database cost of one job submitted over HTTP and run, every process counted "
            f"({cost.jobs:,} jobs): {per_job}"
        )
    return "\n".join(lines)
