"""``GET /metrics``: Prometheus text. Gauges read from the database when scraped, so every web
process reports the same truth and no multi-process bookkeeping is needed."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from domain.errors import DomainError


class HopperCollector:
    def __init__(self, metrics: Any, consumer_counts: Callable[[], dict[str, int] | None]) -> None:
        self._metrics = metrics
        self._consumer_counts = consumer_counts

    def collect(self) -> Iterator[GaugeMetricFamily]:
        up = GaugeMetricFamily("hopper_database_up", "1 when the database answered this scrape")
        try:
            queues = self._metrics.queues()
            pending = self._metrics.pending_deliveries()
        except DomainError:
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from _queue_gauges(queues)
        deliveries = GaugeMetricFamily(
            "hopper_webhook_deliveries_pending", "Webhook deliveries waiting for an attempt"
        )
        deliveries.add_metric([], pending)
        yield deliveries
        yield from _consumer_gauge(self._consumer_counts())


def _consumer_gauge(counts: dict[str, int] | None) -> Iterator[GaugeMetricFamily]:
    """From the broker, where it can tell (RabbitMQ); absent where it cannot."""
    if counts is None:
        return
    consumers = GaugeMetricFamily(
        "hopper_queue_consumers",
        "Consumers of each queue, as the broker counts them",
        labels=["queue"],
    )
    for queue, count in sorted(counts.items()):
        consumers.add_metric([queue], count)
    yield consumers


def _queue_gauges(queues: list[Any]) -> Iterator[GaugeMetricFamily]:
    jobs = GaugeMetricFamily(
        "hopper_jobs", "Jobs due and waiting, or running", labels=["queue", "status"]
    )
    oldest = GaugeMetricFamily(
        "hopper_queue_oldest_seconds", "How long the oldest due job has waited", labels=["queue"]
    )
    for figure in queues:
        jobs.add_metric([figure.queue, "queued"], figure.queued)
        jobs.add_metric([figure.queue, "running"], figure.running)
        oldest.add_metric([figure.queue], figure.oldest_queued_seconds)
    yield jobs
    yield oldest


def exposition(
    metrics: Any, consumer_counts: Callable[[], dict[str, int] | None]
) -> tuple[bytes, str]:
    registry = CollectorRegistry()
    registry.register(HopperCollector(metrics, consumer_counts))  # type: ignore[arg-type]
    return generate_latest(registry), CONTENT_TYPE_LATEST
