"""``GET /metrics`` of the web tier: what its processes counted (``api.meta.instruments``,
summed over gunicorn's workers) and the gauges read from the database at the scrape (one
statement, cached a few seconds: ``domain.services.metrics``), which every web process reports
alike. Queue consumers come from the broker where it can tell."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from domain.errors import DomainError
from domain.queues import WAITING_REASONS

DATABASE_FAMILIES = (
    ("hopper_database_up", "gauge"),
    ("hopper_jobs_waiting", "gauge"),
    ("hopper_jobs_running", "gauge"),
    ("hopper_queue_oldest_due_seconds", "gauge"),
    ("hopper_queue_paused_tenants", "gauge"),
    ("hopper_webhook_deliveries_pending", "gauge"),
    ("hopper_queue_consumers", "gauge"),
)


# Only with DATABASE_REPLICA_URL set.
REPLICA_FAMILIES = (("hopper_database_replica_lag_seconds", "gauge"),)


class DatabaseCollector:
    def __init__(
        self,
        metrics: Any,
        consumer_counts: Callable[[], dict[str, int] | None],
        replica_lag: Callable[[], float | None],
    ) -> None:
        self._metrics = metrics
        self._consumer_counts = consumer_counts
        self._replica_lag = replica_lag

    def collect(self) -> Iterator[GaugeMetricFamily]:
        yield from _replica_gauge(self._replica_lag())
        up = GaugeMetricFamily("hopper_database_up", "1 when the database answered this scrape")
        try:
            gauges = self._metrics.gauges()
        except DomainError:
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from _queue_gauges(gauges.queues, gauges.pauses)
        deliveries = GaugeMetricFamily(
            "hopper_webhook_deliveries_pending", "Webhook deliveries waiting for an attempt"
        )
        deliveries.add_metric([], gauges.pending_deliveries)
        yield deliveries
        yield from _consumer_gauge(self._consumer_counts())


def _replica_gauge(lag: float | None) -> Iterator[GaugeMetricFamily]:
    if lag is None:
        return
    gauge = GaugeMetricFamily(
        "hopper_database_replica_lag_seconds",
        "How far the read replica is behind (+Inf when it does not answer); beyond "
        "HOPPER_REPLICA_MAX_LAG_SECONDS every read goes to the primary",
    )
    gauge.add_metric([], lag)
    yield gauge


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


def _queue_gauges(queues: list[Any], pauses: dict[str, int]) -> Iterator[GaugeMetricFamily]:
    waiting = GaugeMetricFamily(
        "hopper_jobs_waiting",
        "Queued jobs by why they wait: capacity (for a place in the window, or a worker), "
        "run_at, backoff, paused, concurrency, rate",
        labels=["queue", "reason"],
    )
    running = GaugeMetricFamily("hopper_jobs_running", "Jobs running", labels=["queue"])
    oldest = GaugeMetricFamily(
        "hopper_queue_oldest_due_seconds",
        "How long the oldest due job has waited for a worker",
        labels=["queue"],
    )
    paused = GaugeMetricFamily(
        "hopper_queue_paused_tenants",
        "Tenants a queue is paused for (a pause for every tenant counts once)",
        labels=["queue"],
    )
    for view in queues:
        for reason in WAITING_REASONS:
            waiting.add_metric([view.queue, reason], view.waiting.get(reason, 0))
        running.add_metric([view.queue], view.running)
        oldest.add_metric([view.queue], view.oldest_due_seconds)
        paused.add_metric([view.queue], pauses.get(view.queue, 0))
    yield from (waiting, running, oldest, paused)


def exposition(container: Any) -> tuple[bytes, str]:
    """What this tier's processes counted, and the database's gauges."""
    registry = CollectorRegistry()
    registry.register(_Counted(container.counted_metrics()))  # type: ignore[arg-type]
    database = DatabaseCollector(
        container.metrics, container.consumer_counts, container.replica_lag
    )
    registry.register(database)  # type: ignore[arg-type]
    return generate_latest(registry), CONTENT_TYPE_LATEST


class _Counted:
    def __init__(self, registry: Any) -> None:
        self._registry = registry

    def collect(self) -> Iterator[Any]:
        yield from self._registry.collect()
