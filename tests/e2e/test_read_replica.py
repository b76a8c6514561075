"""Reads from a streaming replica, with read-your-writes: a primary and its replica of the test's
own (``initdb`` and ``pg_basebackup -R`` as the ``postgres`` user, on free ports, in a temporary
folder; the shared cluster is left alone). The replica's own statistics show it serving reads;
with its replay paused on purpose, a key still sees its submit and its cancel at once. Which
server ran a read is told by the replica's log of every statement (`log_statement=all`), which is
written as the statement runs; its statistics, which a backend may hold back for up to ten
seconds but reports as it exits, are checked to agree once the stack has stopped."""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from domain.settings import Settings
from hopper.bootstrap import bootstrap
from hopper.migrate import migrate
from tests.factories import make_tenant
from tests.services import real_env
from tests.stack import Stack, free_port, full_stack, wait_until

BIN = Path("/usr/lib/postgresql/15/bin")
DATABASE = "hopper_replicated"
MAX_LAG = 1.0


def as_postgres(*argv: str) -> None:
    subprocess.run(["runuser", "-u", "postgres", "--", *argv], check=True, capture_output=True)


class Cluster:
    def __init__(self, folder: Path, port: int, settings: str = "") -> None:
        self.folder, self.port, self.settings = folder, port, settings
        self.log = folder.parent / f"{folder.name}.log"

    def start(self) -> None:
        options = f"-p {self.port} -k {self.folder.parent} -c listen_addresses=127.0.0.1"
        as_postgres(
            str(BIN / "pg_ctl"),
            "-D",
            str(self.folder),
            "-l",
            str(self.log),
            "-o",
            f"{options} {self.settings}",
            "-w",
            "start",
        )

    def logged(self) -> int:
        """Where its log ends now, for ``job_reads_since``."""
        return self.log.stat().st_size

    def job_reads_since(self, offset: int) -> int:
        """Reads of jobs (a job, or a page of them) among the statements logged after ``offset``;
        an entry starts with its time, a statement may span lines."""
        with self.log.open("rb") as log:
            log.seek(offset)
            entries = re.split(rb"\n(?=\d{4}-\d\d-\d\d )", log.read())
        return sum(
            re.search(rb"LOG:  (statement|execute [^:]*): SELECT jobs\.id", e) is not None
            for e in entries
        )

    def stop(self) -> None:
        as_postgres(str(BIN / "pg_ctl"), "-D", str(self.folder), "-m", "immediate", "-w", "stop")

    def url(self, database: str = DATABASE) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def query(self, sql: str, database: str = DATABASE) -> Any:
        with psycopg.connect(
            host="127.0.0.1", port=self.port, user="postgres", dbname=database, autocommit=True
        ) as connection:
            cursor = connection.execute(sql)
            return cursor.fetchone() if cursor.description else None


@pytest.fixture(scope="module")
def clusters() -> Iterator[tuple[Cluster, Cluster]]:
    root = Path(tempfile.mkdtemp(prefix="hopper-replica-"))
    shutil.chown(root, "postgres", "postgres")
    primary, replica = (
        Cluster(root / "primary", free_port()),
        Cluster(root / "replica", free_port(), "-c log_statement=all"),
    )
    started: list[Cluster] = []
    try:
        as_postgres(
            str(BIN / "initdb"),
            "-D",
            str(primary.folder),
            "-U",
            "postgres",
            "--auth=trust",
            "--no-sync",
        )
        primary.start()
        started.append(primary)
        as_postgres(
            str(BIN / "pg_basebackup"),
            "-h",
            "127.0.0.1",
            "-p",
            str(primary.port),
            "-U",
            "postgres",
            "-D",
            str(replica.folder),
            "-R",
            "-X",
            "stream",
        )
        replica.start()
        started.append(replica)
        primary.query(f"CREATE DATABASE {DATABASE}", database="postgres")
        yield primary, replica
    finally:
        for cluster in reversed(started):
            cluster.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def stack(
    clusters: tuple[Cluster, Cluster], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    primary, replica = clusters
    env = real_env(
        DATABASE_URL=primary.url(),
        DATABASE_REPLICA_URL=replica.url(),
        HOPPER_REPLICA_MAX_LAG_SECONDS=str(MAX_LAG),
    )
    migrate(Settings.from_env(env))
    with full_stack(env, tmp_path_factory.mktemp("replica")) as running:
        yield running


def tenant(primary: Cluster) -> dict[str, str]:
    """A tenant and a key per role, made in-process on the primary."""
    wiring = bootstrap(Settings.from_env(real_env(DATABASE_URL=primary.url())), pool_size=1)
    try:
        made = make_tenant(wiring.access)
    finally:
        wiring.engine.dispose()
    return {"submitter": made.submitter, "reader": made.reader}


def replica_reads(replica: Cluster) -> int:
    """Rows the replica has returned in Hopper's database, as its own statistics count them;
    read from another database, so that reading them does not count."""
    row = replica.query(
        f"SELECT tup_returned + tup_fetched FROM pg_stat_database WHERE datname = '{DATABASE}'",
        database="postgres",
    )
    return int(row[0])


def test_reads_go_to_the_replica_and_a_key_always_sees_its_own_writes(
    stack: Stack, clusters: tuple[Cluster, Cluster]
) -> None:
    primary, replica = clusters
    keys = tenant(primary)
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    body = {"type": "echo", "payload": {"message": "r"}, "run_at": later}
    before, start = replica_reads(replica), replica.logged()
    first = stack.request("POST", "/v1/jobs", keys["submitter"], json=body).json()["id"]

    # Caught up: a reader's lists and reads are served by the replica.
    wait_until(lambda: stack.request("GET", f"/v1/jobs/{first}", keys["reader"]).ok, 10, "replay")
    mark = replica.logged()
    for _ in range(10):
        assert stack.request("GET", "/v1/jobs", keys["reader"]).json()["data"][0]["id"] == first
    assert replica.job_reads_since(mark) >= 10

    # Replay paused: the submitter's submit and cancel are seen at once, from the primary.
    replica.query("SELECT pg_wal_replay_pause()")
    try:
        for _ in range(3):
            job = stack.request("POST", "/v1/jobs", keys["submitter"], json=body).json()
            seen = stack.request("GET", f"/v1/jobs/{job['id']}", keys["submitter"])
            assert seen.status_code == 200 and seen.json()["status"] == "queued"
            listed = stack.request("GET", "/v1/jobs", keys["submitter"]).json()["data"]
            assert listed[0]["id"] == job["id"]
            canceled = stack.request("POST", f"/v1/jobs/{job['id']}/cancel", keys["submitter"])
            assert canceled.status_code == 200
            again = stack.request("GET", f"/v1/jobs/{job['id']}", keys["submitter"]).json()
            assert again["status"] == "canceled"
        # Too far behind: every key reads the primary, and the lag is a metric.
        time.sleep(MAX_LAG + 0.5)
        mark = replica.logged()
        for _ in range(10):
            newest = stack.request("GET", "/v1/jobs", keys["reader"]).json()["data"][0]
            assert (newest["id"], newest["status"]) == (job["id"], "canceled")
        assert replica.job_reads_since(mark) == 0
        lag = metric(stack.request("GET", "/metrics").text, "hopper_database_replica_lag_seconds")
        assert lag > MAX_LAG
    finally:
        replica.query("SELECT pg_wal_replay_resume()")
    wait_until(
        lambda: (
            metric(stack.request("GET", "/metrics").text, "hopper_database_replica_lag_seconds") < 1
        ),
        15,
        "the replica",
    )
    assert (
        primary.query("SELECT count(*) FROM jobs")[0]
        == replica.query("SELECT count(*) FROM jobs")[0]
    )
    stack.stop()  # the web's backends on the replica exit, and report their statistics
    served = replica.job_reads_since(start)
    wait_until(lambda: replica_reads(replica) - before >= served, 5, "the replica's statistics")


def metric(text: str, name: str) -> float:
    line = next(line for line in text.splitlines() if line.startswith(name + " "))
    return float(line.rsplit(" ", 1)[1])
