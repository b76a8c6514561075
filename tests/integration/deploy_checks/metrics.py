"""The metrics Hopper exposes, with their labels and the values the code gives those labels:
what a query on a dashboard, an alert or a KEDA trigger may name."""

from __future__ import annotations

from functools import cache

from domain.queues import ALL_QUEUES, WAITING_REASONS
from hopper import telemetry

# Labels Prometheus adds to every scraped sample (the target's), which any selector may use.
TARGET_LABELS = frozenset({"job", "instance", "namespace", "pod"})
# The gauges read from the database at the scrape (api.meta.metrics), with their labels; the
# instruments' labels are read from the instruments themselves.
DATABASE_LABELS: dict[str, set[str]] = {
    "hopper_database_up": set(),
    "hopper_jobs_waiting": {"queue", "reason"},
    "hopper_jobs_running": {"queue"},
    "hopper_queue_oldest_due_seconds": {"queue"},
    "hopper_queue_paused_tenants": {"queue"},
    "hopper_queue_consumers": {"queue"},
    "hopper_webhook_deliveries_pending": set(),
    "hopper_database_replica_lag_seconds": set(),
}
# The database gauges are the same on every web pod: only max (or min) may aggregate them.
SAME_ON_EVERY_POD = frozenset(DATABASE_LABELS)
# The values a label can take, where the code fixes them (None: the label of any metric).
LABEL_VALUES: dict[tuple[str | None, str], set[str]] = {
    (None, "queue"): set(ALL_QUEUES),
    (None, "reason"): set(WAITING_REASONS),
    ("hopper_jobs_finished_total", "outcome"): {
        "succeeded",
        "retrying",
        "failed",
        "canceled",
        "handed_back",
        "lease_lost",
    },
    ("hopper_webhook_deliveries_total", "outcome"): {"delivered", "retrying", "failed", "lost"},
    ("hopper_scheduler_passes_total", "result"): {"ok", "failed"},
    ("hopper_scheduler_actions_total", "action"): {
        "fired_schedules",
        "dispatched",
        "lost_publishes",
        "published_deliveries",
        "reclaimed",
        "purged",
    },
}


def _instrument_labels() -> dict[str, set[str]]:
    from api.meta.instruments import INSTRUMENTS
    from workers.instruments import SCHEDULER_INSTRUMENTS, WORKER_INSTRUMENTS

    labels: dict[str, set[str]] = {}
    for instrument in (*INSTRUMENTS, *WORKER_INSTRUMENTS, *SCHEDULER_INSTRUMENTS):
        (family,) = instrument.describe()
        names = set(instrument._labelnames)
        if family.type == "counter":
            labels[f"{family.name}_total"] = names
        elif family.type == "histogram":
            labels |= {f"{family.name}_{s}": set(names) for s in ("sum", "count")}
            labels[f"{family.name}_bucket"] = names | {"le"}
        else:
            labels[family.name] = names
    return labels


@cache
def metric_labels() -> dict[str, frozenset[str]]:
    """Every sample name any process kind exposes, with its labels (and only those: a name in
    DATABASE_LABELS that no process exposes any more is no name a query may use)."""
    labels = _instrument_labels() | DATABASE_LABELS
    exposed = set().union(*telemetry.exposed_metric_names().values())
    assert exposed, "hopper.telemetry says no process exposes any metric"
    unknown = sorted(exposed - set(labels))
    assert not unknown, f"list the labels of {unknown} in DATABASE_LABELS"
    return {name: frozenset(labels[name]) for name in exposed}


def known_values(metric: str, label: str) -> set[str] | None:
    """The values the code gives the metric's label, or None where it does not fix them."""
    return LABEL_VALUES.get((metric, label)) or LABEL_VALUES.get((None, label))
