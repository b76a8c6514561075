"""Two schedulers at once over 1,000 scheduled jobs: each job is dispatched once and runs once."""

from __future__ import annotations

import signal
from datetime import UTC, datetime, timedelta

from sqlalchemy import text
from sqlalchemy.engine import Engine

from tests.e2e.http_and_schedules.shared import counter
from tests.faults.conftest import count_finished
from tests.stack import Stack, free_port, wait_until


def dispatched_by(port: int) -> float:
    """The jobs a scheduler's dispatcher handed to the broker, from its `/metrics`."""
    return counter(port, "hopper_scheduler_actions_total", action="dispatched")


def test_two_schedulers_run_each_scheduled_job_exactly_once(stack: Stack, db: Engine) -> None:
    # A republish threshold longer than the test: every publish counted here is a first one.
    patient = {"HOPPER_REPUBLISH_AFTER_SECONDS": "600"}
    stack.web()
    keys = stack.new_tenant()
    run_at = (datetime.now(UTC) + timedelta(seconds=6)).isoformat()
    for part in range(2):
        jobs = [
            {"type": "echo", "payload": {"message": f"{part}-{i}"}, "run_at": run_at}
            for i in range(500)
        ]
        assert (
            stack.request(
                "POST", "/v1/jobs/batch", keys["submitter"], json={"jobs": jobs}
            ).status_code
            == 202
        )
    ports = [free_port(), free_port()]
    schedulers = [
        stack.scheduler(env={**patient, "HOPPER_METRICS_PORT": str(port)}) for port in ports
    ]
    stack.worker(concurrency=4)
    stack.worker(concurrency=4)

    wait_until(
        lambda: count_finished(db, keys["tenant_id"]) == 1000, 180, "all 1,000 jobs to finish"
    )
    with db.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT j.status, j.attempts, j.run_at, min(a.started_at) AS first_start, "
                "count(a.id) AS runs FROM jobs j JOIN job_attempts a ON a.job_id = j.id "
                "WHERE j.tenant_id = :t GROUP BY j.id"
            ),
            {"t": keys["tenant_id"]},
        ).all()
    assert len(rows) == 1000
    assert {(row.status, row.attempts, row.runs) for row in rows} == {("succeeded", 1, 1)}
    assert all(row.first_start >= row.run_at for row in rows), "a job ran before its run_at"
    counts = [dispatched_by(port) for port in ports]
    assert sum(counts) == 1000, f"dispatched {counts}: a job was dispatched twice or not at all"
    for scheduler in schedulers:  # SIGTERM stops a scheduler cleanly
        scheduler.popen.send_signal(signal.SIGTERM)
        assert scheduler.popen.wait(10) == 0
        assert "scheduler_stopped" in scheduler.output()
