"""Every process kind serves its own ``/metrics`` on ``HOPPER_METRICS_PORT``, behind the metrics
token; after a mixed run (successes, failures, retries, deliveries, a 429, jobs held back) each
family is there with its labels, and its values match what the database recorded."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import create_engine, text

from hopper.telemetry import exposed_metric_names
from tests.receiver import Receiver
from tests.services import DATABASE_URL, real_env
from tests.stack import Stack, free_port

TOKEN = "metrics-token-for-tests-only"
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


@pytest.fixture(scope="module")
def ports() -> dict[str, int]:
    return {kind: free_port() for kind in ("web", "worker", "webhooks", "scheduler")}


@pytest.fixture(scope="module")
def stack(
    migrated_database: str, ports: dict[str, int], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    # Seven submissions per key a minute: the test makes seven, then one too many.
    env = real_env(HOPPER_METRICS_TOKEN=TOKEN, HOPPER_RATE_LIMIT_CREATE="7/minute")
    running = Stack(env, tmp_path_factory.mktemp("metrics"))
    metrics_port = "HOPPER_METRICS_PORT"
    try:
        running.web(env={metrics_port: str(ports["web"])})
        running.worker(env={metrics_port: str(ports["worker"])})
        running.worker(queues="webhooks", concurrency=4, env={metrics_port: str(ports["webhooks"])})
        running.scheduler(env={metrics_port: str(ports["scheduler"])})
        yield running
    finally:
        running.stop()


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
    began = datetime.now(UTC)
    receiver = Receiver()
    try:
        hook = {"url": receiver.url, "event_types": ["job.succeeded"]}
        assert stack.request("POST", "/v1/webhook-endpoints", keys["admin"], json=hook).ok
        later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
        echo = {"type": "echo", "payload": {"message": "m"}}
        ran = [submit(stack, keys["submitter"], echo) for _ in range(3)]
        doomed = submit(
            stack,
            keys["submitter"],
            {"type": "fail", "payload": {"message": "x"}, "max_attempts": 1},
        )
        flaky = submit(
            stack,
            keys["submitter"],
            {"type": "fail", "payload": {"message": "x", "times": 1}, "max_attempts": 2},
        )
        held = [submit(stack, keys["submitter"], {**echo, "run_at": later}) for _ in range(2)]
        for job_id in [*ran, doomed, flaky]:
            stack.wait_for_job(job_id, keys["reader"])
        receiver.wait_for(4)  # three echoes and the flaky job succeeded
        refused = stack.request("POST", "/v1/jobs", keys["submitter"], json=echo)
        assert refused.status_code == 429
    finally:
        receiver.close()

    # The first scrape of each web process reads the database afresh (nothing is cached yet).
    web, worker = scrape(ports["web"]), scrape(ports["worker"])
    webhooks, scheduler = scrape(ports["webhooks"]), scrape(ports["scheduler"])
    exposed = exposed_metric_names()
    assert exposed["web"] - {"hopper_database_replica_lag_seconds"} <= web.names()  # no replica
    assert exposed["worker"] <= worker.names() | webhooks.names()  # the jobs' and deliveries' pools
    assert exposed["scheduler"] <= scheduler.names()

    # web: what it served and what the database holds
    posted = {"route": "/v1/jobs", "method": "POST", "status": "202"}
    assert web.value("hopper_http_request_duration_seconds_count", **posted) == 7
    assert web.value("hopper_jobs_submitted_total", type="echo", queue="default") == 5
    assert web.value("hopper_jobs_submitted_total", type="fail", queue="default") == 2
    assert web.value("hopper_rate_limit_refusals_total", limit="creating") == 1
    assert (
        web.value("hopper_http_request_duration_seconds_count", **{**posted, "status": "429"}) == 1
    )
    assert web.labels_of("hopper_jobs_waiting") == {"queue", "reason"}
    held_back = database(
        "SELECT count(*) FROM jobs WHERE status = 'queued' AND queue = 'default' "
        "AND attempts = 0 AND run_at > now()"
    )
    assert held_back >= len(held)
    assert web.value("hopper_jobs_waiting", queue="default", reason="run_at") == held_back
    assert web.value("hopper_database_up") == 1
    assert web.value("hopper_queue_consumers", queue="webhooks") == 1

    # workers: every attempt this stack ran, by outcome, as the attempts table has them
    ours = (
        "SELECT count(*) FROM job_attempts a JOIN jobs j ON j.id = a.job_id WHERE j.tenant_id = :t"
    )
    attempts = database(ours, t=keys["tenant_id"])
    assert attempts == 6  # three echoes, the doomed job once, the flaky job twice
    started = sum(
        worker.value("hopper_jobs_started_total", type=t, queue="default") for t in ("echo", "fail")
    )
    assert started == attempts
    finished = {
        outcome: worker.value(
            "hopper_jobs_finished_total", type=t, queue="default", outcome=outcome
        )
        for t, outcome in (("echo", "succeeded"), ("fail", "failed"), ("fail", "retrying"))
    }
    assert finished == {"succeeded": 3, "failed": 1, "retrying": 1}
    assert (
        worker.value(
            "hopper_jobs_finished_total", type="fail", queue="default", outcome="succeeded"
        )
        == 1
    )
    assert worker.value("hopper_job_run_duration_seconds_count", type="echo") == 3
    assert worker.value("hopper_job_queue_wait_seconds_count", type="fail") == 3

    # deliveries: every attempt recorded since the stack began was made by its webhooks pool
    delivered = database(
        "SELECT count(*) FROM webhook_delivery_attempts WHERE at >= :began "
        "AND status_code BETWEEN 200 AND 299",
        began=began,
    )
    assert delivered >= 4
    assert webhooks.value("hopper_webhook_deliveries_total", outcome="delivered") == delivered
    assert webhooks.value("hopper_webhook_delivery_duration_seconds_count") >= delivered

    # scheduler: its passes
    assert scheduler.value("hopper_scheduler_passes_total", result="ok") > 0
    assert scheduler.labels_of("hopper_scheduler_actions_total") == {"action"}


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
