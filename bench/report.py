"""The table: each figure's median over the runs, beside its peer's, and the ratio."""

from __future__ import annotations

import statistics
from collections.abc import Sequence

from bench.scenarios import Figure


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
    text = f"{rate:,.0f} {unit}"
    if p99 is not None:
        text += f", p50 {p50:.1f} ms, p95 {p95:.1f} ms, p99 {p99:.1f} ms"
    return text


def ratio(ours: Sequence[Figure], peer: Sequence[Figure]) -> str:
    if not ours or not peer:
        return "—"
    mine = _median([f.per_second for f in ours])
    theirs = _median([f.per_second for f in peer])
    assert mine is not None and theirs is not None
    return f"{mine / theirs:.2f}x"


def table(rows: list[tuple[str, str, list[Figure], str, list[Figure]]]) -> str:
    """`rows`: (path, unit, Hopper's figures, the peer's name, the peer's figures)."""
    lines = [
        "| path | Hopper | bare peer, same run | ratio |",
        "| --- | --- | --- | --- |",
    ]
    for path, unit, ours, peer_name, peer in rows:
        theirs = f"{peer_name}: {_cell(peer, unit)}" if peer else "—"
        lines.append(f"| {path} | {_cell(ours, unit)} | {theirs} | {ratio(ours, peer)} |")
    return "\n".join(lines)
