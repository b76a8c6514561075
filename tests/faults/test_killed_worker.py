"""A worker killed with SIGKILL mid-job: nothing it had taken is lost."""

from __future__ import annotations

import os
import signal

from sqlalchemy import text
from sqlalchemy.engine import Engine

from tests.faults.conftest import count_finished, job_states
from tests.stack import Stack, wait_until


def test_sigkill_of_a_busy_worker_loses_no_job(stack: Stack, db: Engine) -> None:
    stack.web()
    stack.scheduler()
    keys = stack.new_tenant()
    doomed = stack.worker(concurrency=4)
    jobs = [{"type": "sleep", "payload": {"seconds": 0.1}} for _ in range(250)]
    jobs += [{"type": "echo", "payload": {"message": str(i)}} for i in range(250)]
    for half in (jobs[:250], jobs[250:]):
        assert (
            stack.request(
                "POST", "/v1/jobs/batch", keys["submitter"], json={"jobs": half}
            ).status_code
            == 202
        )

    wait_until(
        lambda: count_finished(db, keys["tenant_id"]) >= 100, 60, "a fifth of the jobs to finish"
    )
    os.killpg(doomed.pid, signal.SIGKILL)  # the worker and its pool processes, mid-flight
    doomed.popen.wait(10)
    at_kill = job_states(db, keys["tenant_id"])
    assert any(status == "running" for status in at_kill.values()), "no job was mid-run at the kill"

    stack.worker(concurrency=4)
    wait_until(lambda: count_finished(db, keys["tenant_id"]) == 500, 180, "all 500 jobs to finish")

    states = job_states(db, keys["tenant_id"])
    assert len(states) == 500
    assert set(states.values()) == {"succeeded"}
    with db.connect() as connection:
        late = connection.execute(
            text(
                "SELECT count(*) FROM job_attempts a JOIN jobs j ON j.id = a.job_id "
                "WHERE j.tenant_id = :t AND a.started_at > j.finished_at"
            ),
            {"t": keys["tenant_id"]},
        ).scalar_one()
        lost = connection.execute(
            text(
                "SELECT count(*) FROM job_attempts a JOIN jobs j ON j.id = a.job_id "
                "WHERE j.tenant_id = :t AND a.error->>'type' = 'worker_lost'"
            ),
            {"t": keys["tenant_id"]},
        ).scalar_one()
    assert late == 0, "an attempt started after its job had finished"
    assert lost >= 1, "the killed runs were not recorded as worker_lost"
