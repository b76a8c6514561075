"""The restore drill (README "Backup and recovery"): a live Hopper with jobs in every state,
webhook deliveries and keys of every role is dumped by `hopper backup` while it runs, restored by
`hopper restore` into a new database, and a new stack on it, with no broker message of the old
one, runs every queued job, runs the running one again, and knows every key.

The new stack keeps the republish threshold (60 s) and a lease of 120 s: the jobs must run within
seconds, which only the restore's repair can make them do."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from amqp.exceptions import NotFound
from kombu import Connection
from sqlalchemy import create_engine, text

from domain import queues
from domain.settings import Settings
from hopper.bootstrap import bootstrap
from hopper.migrate import migrate
from tests.factories import TenantKeys, make_tenant
from tests.receiver import Receiver
from tests.services import BROKER_URL, real_env
from tests.stack import HOPPER, ROOT, Stack, wait_until

ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
# One web process boots faster on two cores, and the drill sends a few dozen requests.
STACK = {"HOPPER_LEASE_SECONDS": "120", "HOPPER_WEB_PROCESSES": "1"}
WITHIN = 20.0  # well under the republish threshold (60 s) and the lease (120 s)
FINISHED = ("succeeded", "failed", "canceled")


@contextlib.contextmanager
def new_database() -> Iterator[str]:
    """A database of the drill's own, dropped after it with whatever still holds it open."""
    name = f"hopper_drill_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def own_vhost() -> Iterator[Future[str]]:
    """A RabbitMQ vhost of the drill's own, made in the background (rabbitmqctl takes a second).
    On the shared test vhost another suite's workers would take the drill's messages (and drop
    them, their database not knowing the jobs), and the jobs would wait for a republish. Without
    rabbitmqctl, the shared vhost it is."""
    name = f"hopper_drill_{uuid.uuid4().hex[:12]}"
    with ThreadPoolExecutor(max_workers=1) as background:
        made = background.submit(make_vhost, name)
        try:
            yield made
        finally:
            if made.result() != BROKER_URL:
                rabbitmqctl("delete_vhost", name)


def make_vhost(name: str) -> str:
    if shutil.which("rabbitmqctl") is None:
        return BROKER_URL
    rabbitmqctl("add_vhost", name)
    rabbitmqctl("set_permissions", "-p", name, "guest", ".*", ".*", ".*")
    return f"amqp://guest:guest@127.0.0.1:5672/{name}"


def rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=30)


def purge_queues(broker_url: str) -> None:
    """Empty the vhost of the old stack's messages (the new broker has none of them), so that
    only the restore's repair can get the restored jobs and deliveries published."""
    with Connection(broker_url) as connection:
        for name in queues.ALL_QUEUES:
            with contextlib.suppress(NotFound):  # a queue never declared: nothing to purge
                connection.channel().queue_purge(name)


def tenant_on(database_url: str) -> TenantKeys:
    container = bootstrap(Settings.from_env(real_env(DATABASE_URL=database_url)), pool_size=1)
    try:
        return make_tenant(container.access)
    finally:
        container.engine.dispose()


def submit(stack: Stack, keys: TenantKeys, body: dict[str, Any]) -> str:
    response = stack.request("POST", "/v1/jobs", keys.submitter, json=body)
    assert response.status_code == 202, response.text
    job_id: str = response.json()["id"]
    return job_id


def echo(stack: Stack, keys: TenantKeys, message: str, **fields: Any) -> str:
    return submit(stack, keys, {"type": "echo", "payload": {"message": message}, **fields})


def job(stack: Stack, keys: TenantKeys, job_id: str) -> dict[str, Any]:
    found: dict[str, Any] = stack.request("GET", f"/v1/jobs/{job_id}", keys.reader).json()
    return found


def every_job(stack: Stack, keys: TenantKeys) -> list[dict[str, Any]]:
    """Every job of the tenant, walked page by page as a client walks them."""
    seen, path = [], "/v1/jobs?limit=5"
    while path:
        page = stack.request("GET", path, keys.reader)
        assert page.status_code == 200, page.text
        seen += page.json()["data"]
        link = page.headers.get("Link")
        path = link[link.index("/v1/") : link.index(">")] if link else ""
    return seen


def deliveries(stack: Stack, keys: TenantKeys, endpoint_id: str) -> dict[str, dict[str, Any]]:
    path = f"/v1/webhook-endpoints/{endpoint_id}/deliveries?limit=100"
    return {d["id"]: d for d in stack.request("GET", path, keys.admin).json()["data"]}


def status_is(stack: Stack, keys: TenantKeys, job_id: str, status: str) -> bool:
    return bool(job(stack, keys, job_id)["status"] == status)


def in_sql(database_url: str, query: str) -> list[Any]:
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            return list(connection.execute(text(query)))
    finally:
        engine.dispose()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    running = Receiver()
    yield running
    running.close()


@pytest.fixture
def vhost() -> Iterator[Future[str]]:
    with own_vhost() as made:
        yield made


def test_a_restored_backup_runs_every_queued_job_and_knows_every_key(
    tmp_path: Path, receiver: Receiver, vhost: Future[str]
) -> None:
    with new_database() as source, new_database() as target:
        migrate(Settings.from_env(real_env(DATABASE_URL=source)))
        keys = tenant_on(source)
        broker_url = vhost.result()
        old = Stack(
            real_env(DATABASE_URL=source, BROKER_URL=broker_url, **STACK), logs(tmp_path, "old")
        )
        try:
            drill = live_data(old, keys, receiver)
            dump = tmp_path / "hopper.dump"
            old.cli("backup", str(dump))
        finally:
            old.stop(timeout=0)  # its workers die with their jobs running, as in a disaster
        purge_queues(broker_url)

        restored = hopper_restore(dump, target)
        assert restored.returncode == 0, restored.stderr
        summary = restored.stderr
        assert "1 running" in summary and "keys: 4 (3 usable)" in summary, summary
        check_repaired(target, drill)

        new = Stack(
            real_env(DATABASE_URL=target, BROKER_URL=broker_url, **STACK), logs(tmp_path, "new")
        )
        try:
            started = time.monotonic()
            start(new)
            check_every_job_runs(new, drill, started)
            check_every_key(new, drill)
            check_deliveries(new, drill, receiver)
        finally:
            new.stop(timeout=0)


class Drill:
    """What the old stack held when the dump was taken, as its API showed it."""

    def __init__(self, keys: TenantKeys, endpoint_id: str, revoked: str) -> None:
        self.keys = keys
        self.endpoint_id = endpoint_id
        self.revoked = revoked
        self.jobs: list[dict[str, Any]] = []
        self.running = ""
        self.later: list[str] = []
        self.deliveries: dict[str, dict[str, Any]] = {}


def live_data(stack: Stack, keys: TenantKeys, receiver: Receiver) -> Drill:
    """Jobs in every state, delivered and pending deliveries, and a revoked key beside the
    three roles. Due jobs stay queued because no worker serves their queue any more."""
    jobs_worker = stack.worker("default,webhooks", concurrency=2)
    stack.worker("long", concurrency=1)
    stack.scheduler()
    stack.web()
    drill = Drill(keys, endpoint(stack, keys, receiver), revoked_key(stack, keys))
    finish_some(stack, keys, drill.endpoint_id)
    jobs_worker.stop(timeout=0)  # idle: everything it ran is recorded
    echo(stack, keys, "due 1")
    echo(stack, keys, "due 2")
    soon = (datetime.now(UTC) + timedelta(seconds=4)).isoformat()
    drill.later = [echo(stack, keys, f"later {n}", run_at=soon) for n in (1, 2)]
    # Two seconds: the dump begins about one second after it is seen running.
    sleep = {"type": "sleep", "payload": {"seconds": 2}, "max_attempts": 3}
    drill.running = submit(stack, keys, sleep)
    wait_until(lambda: status_is(stack, keys, drill.running, "running"), 20, "the sleep job")
    drill.jobs = every_job(stack, keys)
    drill.deliveries = deliveries(stack, keys, drill.endpoint_id)
    return drill


def endpoint(stack: Stack, keys: TenantKeys, receiver: Receiver) -> str:
    made = stack.request("POST", "/v1/webhook-endpoints", keys.admin, json={"url": receiver.url})
    assert made.status_code == 201, made.text
    endpoint_id: str = made.json()["id"]
    return endpoint_id


def revoked_key(stack: Stack, keys: TenantKeys) -> str:
    body = {"name": "revoked", "role": "reader"}
    made = stack.request("POST", "/v1/api-keys", keys.admin, json=body).json()
    assert stack.request("DELETE", f"/v1/api-keys/{made['id']}", keys.admin).status_code == 204
    secret: str = made["key"]
    return secret


def finish_some(stack: Stack, keys: TenantKeys, endpoint_id: str) -> None:
    """Two succeeded, one failed, one canceled, and each event delivered (7 deliveries)."""
    ids = [echo(stack, keys, "one"), echo(stack, keys, "two")]
    ids.append(
        submit(stack, keys, {"type": "fail", "payload": {"message": "no"}, "max_attempts": 1})
    )
    canceled = echo(stack, keys, "never", run_at="2099-01-01T00:00:00Z")
    assert stack.request("POST", f"/v1/jobs/{canceled}/cancel", keys.submitter).status_code == 200
    for job_id in ids:
        stack.wait_for_job(job_id, keys.reader, timeout=20)
    wait_until(
        lambda: statuses(deliveries(stack, keys, endpoint_id)) == {"succeeded": 7},
        20,
        "the seven deliveries",
    )


def statuses(found: dict[str, dict[str, Any]]) -> dict[str, int]:
    return dict(Counter(d["status"] for d in found.values()))


def hopper_restore(dump: Path, database_url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [HOPPER, "restore", str(dump)],
        cwd=ROOT,
        env={**os.environ, **real_env(DATABASE_URL=database_url)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def check_repaired(database_url: str, drill: Drill) -> None:
    """Before any process starts: every row is there, and the repair is made."""
    counts = dict(
        in_sql(database_url, "SELECT status, count(*) FROM webhook_deliveries GROUP BY 1")
    )
    assert counts == statuses(drill.deliveries), counts
    assert counts["pending"] == 1  # the running job's job.started, with no delivery pool left
    unrepaired = in_sql(
        database_url,
        "SELECT id FROM jobs WHERE (status = 'queued' AND published_at IS NOT NULL)"
        " OR (status = 'running' AND lease_expires_at > now())"
        " UNION ALL SELECT id FROM webhook_deliveries"
        " WHERE status = 'pending' AND published_at IS NOT NULL",
    )
    assert unrepaired == []


def start(stack: Stack) -> None:
    """The three process kinds; one pool for every queue boots faster than a pool each."""
    stack.worker(",".join(queues.ALL_QUEUES), concurrency=2)
    stack.scheduler()
    stack.web()


def check_every_job_runs(stack: Stack, drill: Drill, started: float) -> None:
    keys = drill.keys
    assert [j["id"] for j in every_job(stack, keys)] == [j["id"] for j in drill.jobs]
    for before in drill.jobs:
        after = stack.wait_for_job(before["id"], keys.reader, timeout=WITHIN)
        assert (after["type"], after["payload"]) == (before["type"], before["payload"])
        if before["status"] in FINISHED:
            assert after == before
        else:
            assert after["status"] == "succeeded", after
    assert time.monotonic() - started < WITHIN, "the jobs waited for a republish or a lease"
    for job_id in drill.later:
        later = job(stack, keys, job_id)
        assert moment(later["started_at"]) >= moment(later["run_at"]), later
    attempts = stack.request("GET", f"/v1/jobs/{drill.running}/attempts", keys.reader).json()
    lost, again = attempts["data"]
    assert lost["status"] == "failed" and lost["error"]["type"] == "worker_lost", lost
    assert again["status"] == "succeeded" and again["number"] == lost["number"] + 1


def check_every_key(stack: Stack, drill: Drill) -> None:
    keys = drill.keys
    assert stack.request("GET", "/v1/jobs", keys.reader).status_code == 200
    assert stack.request("POST", "/v1/jobs", keys.reader, json={}).status_code == 403
    assert stack.request("POST", "/v1/api-keys", keys.submitter, json={}).status_code == 403
    echo(stack, keys, "after the restore")
    assert stack.request("GET", "/v1/api-keys", keys.admin).status_code == 200
    assert stack.request("GET", "/v1/jobs", drill.revoked).status_code == 401


def check_deliveries(stack: Stack, drill: Drill, receiver: Receiver) -> None:
    """The delivered are not sent again; the pending one is sent by the new stack."""
    pending = [d for d in drill.deliveries.values() if d["status"] == "pending"]
    wait_until(
        lambda: all(
            deliveries(stack, drill.keys, drill.endpoint_id)[d["id"]]["status"] == "succeeded"
            for d in pending
        ),
        WITHIN,
        "the pending delivery",
    )
    after = deliveries(stack, drill.keys, drill.endpoint_id)
    for before in drill.deliveries.values():
        if before["status"] == "succeeded":
            assert after[before["id"]] == before
    sent = {r.headers.get("webhook-id") for r in receiver.received}
    assert {d["event_id"] for d in pending} <= sent


def moment(timestamp: str) -> datetime:
    return datetime.fromisoformat(timestamp)


def logs(tmp_path: Path, name: str) -> Path:
    folder = tmp_path / name
    folder.mkdir()
    return folder
