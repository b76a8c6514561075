"""The last backstop of README "Timeouts and cancellation": "Should even the watchdog be stuck,
Celery's hard time limit (the timeout plus `HOPPER_HARD_LIMIT_MARGIN_SECONDS`) kills the process
and the lease records the end."

A watchdog cannot be stuck alone from outside, but a whole pool process can: SIGSTOP freezes the
handler and its watchdog together, as a process wedged in the kernel would be. Celery's main
process, which enforces the hard limit on its pool children, keeps running. The margin is 10 s
here (30 s by default), set where the job is submitted, which is where the limit is written
into the message; so this test takes a little over 11 s.

The watchdog is given a long grace so that it cannot end the run itself before the freeze: that
removes a race, and changes nothing after the freeze, when the watchdog cannot act at all.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
from collections.abc import Iterator
from datetime import datetime

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from domain.auth import Principal
from domain.commands import SubmitJob
from domain.model import Role
from domain.settings import Settings
from hopper.bootstrap import Container, bootstrap
from tests.factories import unique
from tests.stack import Stack, wait_until

TIMEOUT = 1
MARGIN = 10
# Below the hard limit (11 s) and far above anything else that could end the run (the lease
# lapses after 2 s; the watchdog is given an hour): the process died of the hard limit.
NOT_BEFORE = 8.0
# Well before the default margin would have ended it (31 s): the configured margin did.
NOT_AFTER = 25.0


@pytest.fixture
def submitting(real_settings: Settings, migrated_database: str) -> Iterator[Container]:
    """The wiring the web app builds with HOPPER_HARD_LIMIT_MARGIN_SECONDS=10."""
    wiring = bootstrap(dataclasses.replace(real_settings, hard_limit_margin_seconds=MARGIN))
    yield wiring
    wiring.engine.dispose()


def submitter(container: Container) -> Principal:
    tenant = container.access.create_tenant(unique("hard-limit"))
    key = container.access.create_key(tenant.id, "submitter", Role.SUBMITTER)
    return Principal(tenant.id, key.record.id, Role.SUBMITTER)


def attempt(db: Engine, job_id: str) -> dict | None:
    """The job's latest attempt joined with the job, and the database's now."""
    with db.connect() as connection:
        row = connection.execute(
            text(
                "SELECT a.worker, a.started_at, a.status AS attempt_status, a.error, "
                "j.status, j.error AS job_error, now() AS now FROM job_attempts a "
                "JOIN jobs j ON j.id = a.job_id WHERE a.job_id = :id "
                "ORDER BY a.number DESC LIMIT 1"
            ),
            {"id": job_id},
        ).first()
    return None if row is None else dict(row._mapping)


def stat_fields(pid: int) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command name, or None for no such process."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return None


def process_state(pid: int) -> str | None:
    """The kernel's one-letter state of a process (T: stopped, Z: dead, unreaped), or None."""
    fields = stat_fields(pid)
    return None if fields is None else fields[0]


def parent_of(pid: int) -> int | None:
    fields = stat_fields(pid)
    return None if fields is None else int(fields[1])


def pid_of(worker_name: str) -> int:
    return int(worker_name.rsplit(":", 1)[1])


def seconds_between(earlier: datetime, later: datetime) -> float:
    return (later - earlier).total_seconds()


def test_the_hard_time_limit_kills_a_frozen_pool_process_and_the_lease_records_the_end(
    stack: Stack, db: Engine, submitting: Container
) -> None:
    who = submitter(submitting)
    # One pool process: the job after the frozen one can run only on a fresh process.
    worker = stack.worker("long", concurrency=1, env={"HOPPER_STOP_GRACE_SECONDS": "3600"})
    stack.scheduler(env={"HOPPER_HARD_LIMIT_MARGIN_SECONDS": str(MARGIN)})
    (stuck,) = submitting.jobs.submit(
        who, [SubmitJob("stubborn", {"seconds": 600}, timeout_seconds=TIMEOUT, max_attempts=1)]
    )
    wait_until(lambda: attempt(db, stuck.id) is not None, 60, "the stubborn job to start", worker)
    run = attempt(db, stuck.id)
    pid = pid_of(run["worker"])
    # Only a pool process of this test's worker may be frozen: another suite's worker on the
    # same vhost could have taken the job, and its processes are not ours to signal.
    assert parent_of(pid) == worker.pid, f"{run['worker']} is not a pool process of this worker"
    try:
        os.kill(pid, signal.SIGSTOP)  # handler and watchdog frozen together
        wait_until(lambda: process_state(pid) == "T", 10, "the pool process to stop")
        (after,) = submitting.jobs.submit(who, [SubmitJob("sleep", {"seconds": 0})])

        # The lease lapses (2 s) and the scheduler records the end, though nothing in the
        # frozen process can speak.
        wait_until(
            lambda: attempt(db, stuck.id)["status"] == "failed", 30, "the lease to record the end"
        )
        ended = attempt(db, stuck.id)
        assert ended["job_error"]["type"] == "timeout" and ended["attempt_status"] == "failed"
        assert process_state(pid) == "T", "the frozen process ended before its hard limit"

        wait_until(lambda: process_state(pid) in (None, "Z"), 90, "the hard limit to kill it")
        killed_after = seconds_between(run["started_at"], attempt(db, stuck.id)["now"])
        assert NOT_BEFORE <= killed_after < NOT_AFTER, (
            f"ended {killed_after:.1f} s after it started"
        )
    finally:  # the test failed: leave nothing frozen (still our worker's child: checked)
        if process_state(pid) not in (None, "Z") and parent_of(pid) == worker.pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    wait_until(lambda: attempt(db, after.id) is not None, 60, "the next job to start", worker)
    wait_until(lambda: attempt(db, after.id)["status"] == "succeeded", 60, "the next job")
    fresh = attempt(db, after.id)
    assert pid_of(fresh["worker"]) != pid  # a fresh pool process took it
    assert seconds_between(run["started_at"], fresh["started_at"]) >= NOT_BEFORE
    assert worker.alive()
    assert "Hard time limit" in worker.output()
    print(f"\nthe frozen process was killed {killed_after:.1f} s after its run started")
