"""Each scenario once, on Hopper or on its bare peer: a `Figure` per run. A submit or drain
figure counts only once every accepted job is where the figure says (published, finished)."""

from __future__ import annotations

import json
import time

from kombu import Connection
from sqlalchemy import text
from sqlalchemy.engine import Engine

from bench.figures import Figure
from bench.load import Load, run_wrk
from bench.peers import drain as peer_drain
from bench.peers import schema as peer_schema
from bench.stacks import Peers, purge, workers
from domain import queues
from tests.services import BROKER_URL
from tests.stack import Process, Stack, wait_until

ECHO = {"type": "echo", "payload": {"message": "bench"}}
BATCH_SIZE = 500


def queue_depth(name: str) -> int:
    with Connection(BROKER_URL) as connection:
        declared = connection.default_channel.queue_declare(queue=name, passive=True)
        return int(declared.message_count)


def count(db: Engine, sql: str) -> int:
    with db.connect() as connection:
        return int(connection.execute(text(sql)).scalar_one())


def _submitted(
    db: Engine, table: str, queue: str, before: int, load: Load, *, published: bool = True
) -> Figure:
    """Rates the run by its jobs over the load's length plus, where a submission ``published``
    its message (the peer does), the wait until every job is a message in its queue (no
    consumer runs). Hopper's submission ends at its commit: its dispatcher keeps only a window
    of the queue in the broker, and the drain measures that path."""
    ended = time.monotonic()
    created = count(db, f"SELECT count(*) FROM {table}") - before
    assert load.failed == 0, f"{load.failed} requests failed"
    assert created >= load.requests, (created, load.requests)
    if published:
        wait_until(lambda: queue_depth(queue) >= created, 120, f"{created} messages in {queue}")
    seconds = load.seconds + (time.monotonic() - ended)
    settle(db, table, queue)
    return Figure.of(load, created / seconds)


def settle(db: Engine, table: str, queue: str) -> None:
    """Takes a submit run's jobs out of the way: their messages purged, and the jobs marked
    canceled, so that no scheduler republishes them into a later run."""
    purge(queue)
    with db.begin() as connection:
        connection.execute(
            text(
                f"UPDATE {table} SET status = 'canceled', finished_at = now() "
                "WHERE status = 'queued'"
            )
        )


def submit_hopper(stack: Stack, key: str, db: Engine, seconds: float) -> Figure:
    before = count(db, "SELECT count(*) FROM jobs")
    load = run_wrk(
        f"{stack.base_url}/v1/jobs",
        method="POST",
        body=json.dumps(ECHO),
        key=key,
        idempotent_every=2,
        seconds=seconds,
    )
    return _submitted(db, "jobs", queues.DEFAULT, before, load, published=False)


def submit_peer(peers: Peers, db: Engine, seconds: float) -> Figure:
    before = count(db, "SELECT count(*) FROM bench_peer.jobs")
    load = run_wrk(f"{peers.base_url}/jobs", method="POST", body=json.dumps(ECHO), seconds=seconds)
    return _submitted(db, "bench_peer.jobs", peer_schema.QUEUE, before, load)


def batch_hopper(stack: Stack, key: str, db: Engine, seconds: float) -> Figure:
    before = count(db, "SELECT count(*) FROM jobs")
    body = json.dumps({"jobs": [ECHO] * BATCH_SIZE})
    load = run_wrk(
        f"{stack.base_url}/v1/jobs/batch",
        method="POST",
        body=body,
        key=key,
        connections=4,
        seconds=seconds,
    )
    return _submitted(db, "jobs", queues.DEFAULT, before, load, published=False)


def get(url: str, key: str | None, seconds: float) -> Figure:
    return Figure.of(run_wrk(url, key=key, seconds=seconds))


def drain_hopper(stack: Stack, key: str, db: Engine, jobs: int) -> Figure:
    """`jobs` echo jobs queued with no worker running (the dispatcher keeps a window of them
    in the broker); then a worker of 2 processes drains them. The rate is from the first job's
    end to the last one's."""
    tag = f"drain-{time.time_ns()}"
    for _ in range(jobs // BATCH_SIZE):
        job = {**ECHO, "metadata": {"run": tag}}
        answer = stack.request("POST", "/v1/jobs/batch", key, json={"jobs": [job] * BATCH_SIZE})
        assert answer.status_code == 202, answer.text
    mine = f"FROM jobs WHERE metadata->>'run' = '{tag}'"
    # Committed is queued: the dispatcher keeps only a window of them in the broker.
    queued = f"SELECT count(*) {mine} AND status = 'queued'"
    wait_until(lambda: count(db, queued) == jobs, 120, "the drain's jobs queued")
    with workers(stack, queues.DEFAULT) as (worker,):
        rate = _drained(db, mine, jobs, worker)
    # A job that waited past HOPPER_REPUBLISH_AFTER_SECONDS was published again; those
    # messages, of jobs now done, are the drain's and go with it.
    purge(queues.DEFAULT)
    return Figure(rate)


def drain_peer(peers: Peers, db: Engine, jobs: int) -> Figure:
    tag = f"drain-{time.time_ns()}"
    ids = [f"{tag}-{n}" for n in range(jobs)]
    with db.begin() as connection:
        connection.execute(
            peer_schema.jobs.insert(), [{"id": i, "type": "echo", "payload": ECHO} for i in ids]
        )
    with peer_drain.app.connection_for_write(BROKER_URL) as connection:
        peer_schema.declare(connection)
        producer = peer_drain.app.amqp.Producer(connection)
        for job_id in ids:
            peer_drain.app.send_task(peer_drain.TASK, args=[job_id], producer=producer)
    mine = f"FROM bench_peer.jobs WHERE id LIKE '{tag}-%'"
    with peers.worker() as worker:
        return Figure(_drained(db, mine, jobs, worker))


def _drained(db: Engine, mine: str, jobs: int, worker: Process) -> float:
    """Waits until the `jobs` rows that `mine` selects have succeeded; their rate, from the
    first one's end to the last one's."""
    wait_until(
        lambda: count(db, f"SELECT count(*) {mine} AND status = 'succeeded'") == jobs,
        900,
        "the drain to finish",
        worker,
    )
    with db.connect() as connection:
        done, first, last = connection.execute(
            text(f"SELECT count(*), min(finished_at), max(finished_at) {mine}")
        ).one()
    return float((done - 1) / (last - first).total_seconds())
