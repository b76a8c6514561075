"""Concurrency and rate keys on a real stack, read from the attempts' own start and end times
(the database's clock): a key of limit 2 never has more than two jobs running, even across a
worker killed mid-run, and a key of 5/second starts its jobs in submit order, never more than
five in any second, and all of them within 8 s."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Engine

from tests.e2e.fairness.conftest import KeyedRun
from tests.e2e.fairness.shared import attempts, finished
from tests.stack import Stack, wait_until


def most_at_once(spans: list[tuple[datetime, datetime]]) -> int:
    """The most spans open at one instant (an end at the very time of a start closes first)."""
    edges = sorted([(start, 1) for start, _ in spans] + [(end, -1) for _, end in spans])
    open_now = most = 0
    for _, step in edges:
        open_now += step
        most = max(most, open_now)
    return most


def test_a_concurrency_key_never_runs_more_than_its_limit_across_a_killed_worker(
    keyed_run: KeyedRun, db: Engine
) -> None:
    """The jobs were submitted when the package started (``keyed_run``), and ran meanwhile."""
    keyed_run.killer.join(90)
    assert keyed_run.killed, "the worker was never seen running one of the jobs"
    wait_until(lambda: finished(db, keyed_run.tenant_id) == 50, 120, "all 50 to finish")

    runs = attempts(db, keyed_run.tenant_id)
    assert all(end is not None for _, _, end in runs)
    assert len(runs) > 50, "no attempt was lost with the killed worker: the kill proved nothing"
    spans = [(start, end) for _, start, end in runs if end is not None]
    assert most_at_once(spans) == 2, "more than two ran at once, or never two"


def test_a_rate_key_starts_its_jobs_in_order_at_its_rate(stack: Stack, db: Engine) -> None:
    keys = stack.new_tenant()
    rate = stack.request(
        "PUT", "/v1/rate-limits/partner-api", keys["admin"], json={"rate": "5/second"}
    )
    assert rate.status_code == 200, rate.text
    job = {"type": "echo", "payload": {"message": "x"}, "rate_key": "partner-api"}
    answer = stack.request("POST", "/v1/jobs/batch", keys["submitter"], json={"jobs": [job] * 30})
    assert answer.status_code == 202, answer.text
    submitted = [job["id"] for job in answer.json()["data"]]
    wait_until(lambda: finished(db, keys["tenant_id"]) == 30, 60, "all 30 to finish")

    runs = attempts(db, keys["tenant_id"])
    assert [job_id for job_id, _, _ in runs] == submitted, "not in submit order, or retried"
    starts = [start for _, start, _ in runs]
    window = timedelta(seconds=1)
    most = max(sum(1 for other in starts if start <= other < start + window) for start in starts)
    assert most == 5, f"{most} started within one second"
    span = (starts[-1] - starts[0]).total_seconds()
    assert 29 * 0.2 <= span <= 8, span
