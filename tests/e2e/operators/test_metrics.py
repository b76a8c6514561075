"""Every process kind serves its own ``/metrics`` on ``HOPPER_METRICS_PORT``, behind the metrics
token; after a mixed run (successes, failures, retries, deliveries, a 429, jobs held back) each
family is there with its labels, and its values match what the database recorded."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import requests
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import create_engine, text

from hopper.telemetry import exposed_metric_names
from tests.e2e.operators.conftest import TOKEN
from tests.receiver import Receiver
from tests.services import DATABASE_URL
from tests.stack import Stack, wait_until

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


class Scraped:
    def __init__(self, samples: Samples) -> None:
        self.samples = samples

    def value(self, name: str, **labels: str) -> float:
        return self.samples.get((name, frozenset(labels.items())), 0.0)

    def names(self) -> set[str]:
        return {name for name, _ in self.samples}

    def labels_of(self, name: str) -> set[str]:
        return {key for n, labels in self.samples if n == name for key, _ in labels}


def scrape(port: int, token: str | None = TOKEN) -> Scraped:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    answer = requests.get(f"http://127.0.0.1:{port}/metrics", headers=headers, timeout=10)
    assert answer.status_code == 200, answer.text
    samples: Samples = {}
    for family in text_string_to_metric_families(answer.text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return Scraped(samples)


def submit(stack: Stack, key: str, body: dict[str, Any]) -> str:
    answer = stack.request("POST", "/v1/jobs", key, json=body)
    assert answer.status_code == 202, answer.text
    return str(answer.json()["id"])


def database(query: str, **params: Any) -> Any:
    engine = create_engine(DATABASE_URL)
    try:
        with engine.connect() as connection:
            return connection.execute(text(query), params).scalar_one()
    finally:
        engine.dispose()


def test_each_process_kind_counts_a_mixed_run_as_the_database_recorded_it(
    stack: Stack, ports: dict[str, int]
) -> None:
    keys = stack.new_tenant()
    began, before = datetime.now(UTC), scrape_all(ports)
    receiver = Receiver()
    try:
        hook = {"url": receiver.url, "event_types": ["job.succeeded"]}
        assert stack.request("POST", "/v1/webhook-endpoints", keys["admin"], json=hook).ok
        later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
        echo = {"type": "echo", "payload": {"message": "m"}}
        doomed = {"type": "fail", "payload": {"message": "x"}, "max_attempts": 1}
        flaky = {"type": "fail", "payload": {"message": "x", "times": 1}, "max_attempts": 2}
        ran = [submit(stack, keys["submitter"], body) for body in (echo, echo, echo, doomed, flaky)]
        held = [submit(stack, keys["submitter"], {**echo, "run_at": later}) for _ in range(2)]
        for job_id in ran:
            stack.wait_for_job(job_id, keys["reader"])
        receiver.wait_for(4)  # three echoes and the flaky job succeeded
        refused = [stack.request("GET", "/v1/jobs", "hop_not_a_key") for _ in range(3)]
        assert [answer.status_code for answer in refused] == [401, 401, 429]
    finally:
        receiver.close()
    after = scrape_all(ports)
    web, worker, webhooks, scheduler = (
        after[k] for k in ("web", "worker", "webhooks", "scheduler")
    )

    def grew(kind: str, name: str, **labels: str) -> float:
        return after[kind].value(name, **labels) - before[kind].value(name, **labels)

    exposed = exposed_metric_names()
    assert exposed["web"] - {"hopper_database_replica_lag_seconds"} <= web.names()  # no replica
    assert exposed["worker"] <= worker.names() | webhooks.names()  # the jobs' and deliveries' pools
    assert exposed["scheduler"] <= scheduler.names()

    # web: what it served
    duration = "hopper_http_request_duration_seconds_count"
    assert grew("web", duration, route="/v1/jobs", method="POST", status="202") == 7
    assert grew("web", duration, route="/v1/jobs", method="GET", status="429") == 1
    assert grew("web", "hopper_jobs_submitted_total", type="echo", queue="default") == 5
    assert grew("web", "hopper_jobs_submitted_total", type="fail", queue="default") == 2
    assert grew("web", "hopper_rate_limit_refusals_total", limit="auth_failures") == 1
    # web: what the database holds (a scrape may be up to 5 s old: it converges)
    assert web.labels_of("hopper_jobs_waiting") == {"queue", "reason"}
    assert web.value("hopper_database_up") == 1
    assert web.value("hopper_queue_consumers", queue="webhooks") == 1
    wait_until(lambda: run_at_gauge_matches(ports["web"], len(held)), 10, "the run_at gauge")

    # workers: every attempt of the tenant's, by outcome, as the attempts table has them
    ours = (
        "SELECT count(*) FROM job_attempts a JOIN jobs j ON j.id = a.job_id WHERE j.tenant_id = :t"
    )
    attempts = database(ours, t=keys["tenant_id"])
    assert attempts == 6  # three echoes, the doomed job once, the flaky job twice
    started = sum(
        grew("worker", "hopper_jobs_started_total", type=t, queue="default")
        for t in ("echo", "fail")
    )
    assert started == attempts
    finished = "hopper_jobs_finished_total"
    outcomes = [
        ("echo", "succeeded"),
        ("fail", "failed"),
        ("fail", "retrying"),
        ("fail", "succeeded"),
    ]
    assert [grew("worker", finished, type=t, queue="default", outcome=o) for t, o in outcomes] == [
        3,
        1,
        1,
        1,
    ]
    assert grew("worker", "hopper_job_run_duration_seconds_count", type="echo") == 3
    assert grew("worker", "hopper_job_queue_wait_seconds_count", type="fail") == 3

    # deliveries: every attempt recorded since the run began was made by this stack's pool
    delivered = database(
        "SELECT count(*) FROM webhook_delivery_attempts WHERE at >= :began "
        "AND status_code BETWEEN 200 AND 299",
        began=began,
    )
    assert delivered >= 4
    assert grew("webhooks", "hopper_webhook_deliveries_total", outcome="delivered") == delivered
    assert grew("webhooks", "hopper_webhook_delivery_duration_seconds_count") >= delivered

    # scheduler: its passes
    assert grew("scheduler", "hopper_scheduler_passes_total", result="ok") > 0
    assert scheduler.labels_of("hopper_scheduler_actions_total") == {"action"}


def scrape_all(ports: dict[str, int]) -> dict[str, Scraped]:
    return {kind: scrape(port) for kind, port in ports.items()}


def run_at_gauge_matches(port: int, at_least: int) -> bool:
    """``reason="run_at"`` is the jobs held back by their ``run_at``, as the database counts."""
    held_back = database(
        "SELECT count(*) FROM jobs WHERE status = 'queued' AND queue = 'default' "
        "AND attempts = 0 AND run_at > now()"
    )
    gauge = scrape(port).value("hopper_jobs_waiting", queue="default", reason="run_at")
    return held_back >= at_least and gauge == held_back


def test_metrics_need_the_token_and_stay_off_the_public_port(
    stack: Stack, ports: dict[str, int]
) -> None:
    for port in ports.values():
        bare = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=10)
        assert bare.status_code == 401
        wrong = requests.get(
            f"http://127.0.0.1:{port}/metrics", headers={"Authorization": "Bearer nope"}, timeout=10
        )
        assert wrong.status_code == 401
    public = stack.request("GET", "/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert public.status_code == 404
    assert public.headers["Content-Type"] == "application/problem+json"
    other = requests.get(f"http://127.0.0.1:{ports['web']}/v1/jobs", timeout=10)
    assert other.status_code == 404
