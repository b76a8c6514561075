"""What the web tier counts as it serves: request durations, submitted jobs, rate-limit refusals
and the time the limiter spent failing open. Each gunicorn worker writes its own figures;
``/metrics`` sums them (prometheus-client's multiprocess mode, set up by ``hopper.telemetry``)."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from flask import Response, g, request
from prometheus_client import Counter, Histogram

# Seconds; from a cached read (a few ms) to a long-poll held to its limit (30 s).
REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

# Any client may send any token as a method: each would otherwise be a series of its own.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

HTTP_REQUEST_DURATION = Histogram(
    "hopper_http_request_duration_seconds",
    "Time to answer an HTTP request, by route template, method and status",
    ["route", "method", "status"],
    buckets=REQUEST_BUCKETS,
)
JOBS_SUBMITTED = Counter(
    "hopper_jobs_submitted", "Jobs accepted (each job of a batch counts)", ["type", "queue"]
)
RATE_LIMIT_REFUSALS = Counter(
    "hopper_rate_limit_refusals",
    "Requests refused with 429, by the limit that refused them",
    ["limit"],
)
RATE_LIMIT_FAIL_OPEN = Counter(
    "hopper_rate_limit_fail_open_seconds",
    "Time the limiter counted in this process because Redis did not answer",
)

INSTRUMENTS = (HTTP_REQUEST_DURATION, JOBS_SUBMITTED, RATE_LIMIT_REFUSALS, RATE_LIMIT_FAIL_OPEN)


def observe_request(response: Response) -> Response:
    """after_request: the request's duration, under its route's template (``/v1/jobs/<id>``,
    never the path itself, which would make a series per job)."""
    started = g.get("started")
    if started is not None:
        route = request.url_rule.rule if request.url_rule is not None else "unmatched"
        method = request.method if request.method in METHODS else "other"
        HTTP_REQUEST_DURATION.labels(route, method, str(response.status_code)).observe(
            time.perf_counter() - started
        )
    return response


def count_submitted(jobs: Iterable[Any]) -> None:
    for job in jobs:
        JOBS_SUBMITTED.labels(job.type, job.queue).inc()
