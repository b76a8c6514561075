"""What workers and the scheduler count as they run: jobs started and finished, how long they
ran and waited, webhook deliveries and their latency, and the scheduler's passes. In a prefork
pool each process writes its own figures; the pool's ``/metrics`` sums them (prometheus-client's
multiprocess mode, set up by ``hopper.telemetry``)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

# Seconds; jobs run from milliseconds to their 24-hour cap.
RUN_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0, 86400.0)
WAIT_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 15.0, 60.0, 300.0, 3600.0)
DELIVERY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

JOBS_STARTED = Counter("hopper_jobs_started", "Attempts started", ["type", "queue"])
JOBS_FINISHED = Counter(
    "hopper_jobs_finished",
    "Attempts ended, by outcome: succeeded; retrying (failed, will run again); failed (for "
    "good); canceled; handed_back (the worker stopped before it ended); lease_lost",
    ["type", "queue", "outcome"],
)
RUN_DURATION = Histogram(
    "hopper_job_run_duration_seconds", "How long attempts ran", ["type"], buckets=RUN_BUCKETS
)
QUEUE_WAIT = Histogram(
    "hopper_job_queue_wait_seconds",
    "From when a job was due to when an attempt started",
    ["type"],
    buckets=WAIT_BUCKETS,
)
DELIVERIES = Counter(
    "hopper_webhook_deliveries",
    "Webhook delivery attempts, by outcome: delivered; retrying; failed (gave up); lost (its "
    "hold lapsed before the answer was recorded)",
    ["outcome"],
)
DELIVERY_DURATION = Histogram(
    "hopper_webhook_delivery_duration_seconds",
    "How long a subscriber took to answer a delivery attempt",
    buckets=DELIVERY_BUCKETS,
)
SCHEDULER_LAG = Gauge(
    "hopper_scheduler_loop_lag_seconds",
    "How late the scheduler's last pass started after it was due",
    multiprocess_mode="max",
)
SCHEDULER_PASSES = Counter(
    "hopper_scheduler_passes", "Scheduler passes, by result (ok, failed)", ["result"]
)
SCHEDULER_ACTIONS = Counter(
    "hopper_scheduler_actions",
    "What the scheduler did: fired schedules, dispatched jobs, jobs whose message was lost, "
    "published deliveries, reclaimed lapsed leases, purged rows",
    ["action"],
)

WORKER_INSTRUMENTS = (
    JOBS_STARTED,
    JOBS_FINISHED,
    RUN_DURATION,
    QUEUE_WAIT,
    DELIVERIES,
    DELIVERY_DURATION,
)
SCHEDULER_INSTRUMENTS = (SCHEDULER_LAG, SCHEDULER_PASSES, SCHEDULER_ACTIONS)
