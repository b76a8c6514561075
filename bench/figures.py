"""One measured run of one figure: a rate and, where there are requests or spans, percentiles."""

from __future__ import annotations

from dataclasses import dataclass

from bench.load import Load


def percentile(samples: list[float], share: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


@dataclass(frozen=True)
class Figure:
    per_second: float | None
    p50_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None

    @classmethod
    def of(cls, load: Load, per_second: float | None = None) -> Figure:
        rate = load.per_second if per_second is None else per_second
        return cls(rate, load.p50_ms, load.p95_ms, load.p99_ms)

    @classmethod
    def of_spans(cls, spans_ms: list[float]) -> Figure:
        """Latencies alone (a paced run's rate is the pace, not a result)."""
        return cls(
            None, percentile(spans_ms, 0.5), percentile(spans_ms, 0.95), percentile(spans_ms, 0.99)
        )
