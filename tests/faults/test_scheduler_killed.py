"""A scheduler killed with SIGKILL in the middle of publishing loses nothing (README "What happens
to a job": "It runs even if ... the scheduler restarts: nothing accepted is ever lost").

A pass marks its jobs published and commits, then publishes them. Killed in between, the jobs it
marked but never sent have no message anywhere; another scheduler must republish them once their
publish is stale (`HOPPER_REPUBLISH_AFTER_SECONDS`, 3 s here), and a job sent twice still runs
once. The first scheduler reaches RabbitMQ through a proxy that holds each chunk from the broker
a few milliseconds, so each publish waits that long for its confirm and a pass of 500 takes
seconds: the kill lands inside it, not between passes.
"""

from __future__ import annotations

import json
import select
import socket
import time
from datetime import datetime, timedelta

from sqlalchemy import text
from sqlalchemy.engine import Engine

from domain.auth import Principal
from domain.commands import SubmitJob
from domain.model import Role
from hopper.bootstrap import Container
from tests.factories import unique
from tests.faults.conftest import count_finished
from tests.faults.proxy import Proxy
from tests.services import VHOST
from tests.stack import Process, Stack, wait_until

JOBS = 1000
BROKER_DELAY = 0.005  # per chunk from the broker: far below the publish timeout (0.25 s)


class SlowProxy(Proxy):
    """Passes bytes both ways, holding each chunk from the broker for ``BROKER_DELAY``."""

    def _pump(self, client: socket.socket, upstream: socket.socket | None) -> None:
        assert upstream is not None
        try:
            while True:
                readable, _, _ = select.select([client, upstream], [], [], 0.2)
                for end in readable:
                    data = end.recv(65536)
                    if not data:
                        return
                    if end is upstream:
                        time.sleep(BROKER_DELAY)
                    (upstream if end is client else client).sendall(data)
        except (OSError, ValueError):
            return
        finally:
            client.close()
            upstream.close()


def submitter(container: Container) -> Principal:
    tenant = container.access.create_tenant(unique("sched-kill"))
    key = container.access.create_key(tenant.id, "submitter", Role.SUBMITTER)
    return Principal(tenant.id, key.record.id, Role.SUBMITTER)


def make_due(db: Engine, tenant_id: str) -> None:
    with db.begin() as connection:
        connection.execute(
            text("UPDATE jobs SET run_at = now() - interval '1 second' WHERE tenant_id = :t"),
            {"t": tenant_id},
        )


def marked(db: Engine, tenant_id: str) -> dict[str, datetime]:
    """The tenant's jobs marked published, with when."""
    with db.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT id, published_at FROM jobs "
                "WHERE tenant_id = :t AND published_at IS NOT NULL"
            ),
            {"t": tenant_id},
        )
        return {row.id: row.published_at for row in rows}


def logged_published(process: Process) -> int:
    """What a scheduler's log says it published: each pass logs once it has sent its batch."""
    return sum(
        json.loads(line).get("published", 0)
        for line in process.output().splitlines()
        if line.startswith("{") and '"scheduler_pass"' in line
    )


def runs(db: Engine, tenant_id: str) -> set[tuple[str, int, int]]:
    with db.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT j.status, j.attempts, count(a.id) AS runs FROM jobs j "
                "LEFT JOIN job_attempts a ON a.job_id = j.id WHERE j.tenant_id = :t "
                "GROUP BY j.id"
            ),
            {"t": tenant_id},
        )
        return {(row.status, row.attempts, row.runs) for row in rows}


def test_a_scheduler_killed_while_publishing_loses_no_job(
    stack: Stack, db: Engine, container: Container
) -> None:
    who = submitter(container)
    later = datetime.now().astimezone() + timedelta(days=1)  # not published on submission
    jobs = [SubmitJob("echo", {"message": str(i)}, run_at=later) for i in range(JOBS)]
    container.jobs.submit(who, jobs, batch=True)
    proxy = SlowProxy(5672)
    try:
        slow = f"amqp://guest:guest@127.0.0.1:{proxy.port}/{VHOST}"
        doomed = stack.scheduler(env={"BROKER_URL": slow})
        stack.worker(concurrency=4)
        wait_until(lambda: "scheduler_started" in doomed.output(), 60, "the scheduler", doomed)
        make_due(db, who.tenant_id)
        wait_until(lambda: marked(db, who.tenant_id), 30, "a pass to commit", doomed)
        doomed.kill_group()  # SIGKILL, mid-publish
        at_kill = marked(db, who.tenant_id)
    finally:
        proxy.close()
    sent_by_its_log = logged_published(doomed)
    assert len(at_kill) > sent_by_its_log, "the kill did not land inside a pass"

    stack.scheduler()
    wait_until(lambda: count_finished(db, who.tenant_id) == JOBS, 120, f"all {JOBS} jobs")

    assert runs(db, who.tenant_id) == {("succeeded", 1, 1)}  # each ran, and exactly once
    after = marked(db, who.tenant_id)
    republished = [job for job, at in at_kill.items() if after[job] > at]
    assert republished, "no job the killed scheduler had marked was published again"
    print(
        f"\nkilled with {len(at_kill)} marked, {sent_by_its_log} logged as sent; "
        f"{len(republished)} of the marked ones republished by the next scheduler"
    )
