"""What the benchmark runs: a real Hopper (gunicorn, celery workers, the scheduler) and the bare
peers, each a set of real processes on 127.0.0.1 that share the machine in turn."""

from __future__ import annotations

import contextlib
import shlex
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests
from amqp.exceptions import NotFound
from kombu import Connection
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine

from bench.peers import schema as peer_schema
from domain import queues
from tests.services import BROKER_URL, DATABASE_URL, real_env
from tests.stack import Process, Stack, free_port, stop_all, wait_until

BIN = Path(sys.executable).parent
# Limits on Redis and quotas stay on (and are checked), high enough that the load measures the
# work, not the refusals: the bench's one tenant submits more than a tenant's default ceilings.
LIMITS = {
    "HOPPER_RATE_LIMIT_DEFAULT": "10000000 per 10 seconds",
    "HOPPER_RATE_LIMIT_CREATE": "10000000 per 10 seconds",
    "HOPPER_QUOTA_UNFINISHED_JOBS": "1000000000",
    "HOPPER_QUOTA_PAYLOAD_BYTES": "1000000000000",
    "HOPPER_LOG_FORMAT": "json",
}


def fresh_database() -> Engine:
    """An empty public schema for Hopper, migrated by the first stack; the peers' table empty."""
    engine = create_engine(DATABASE_URL)
    with engine.begin() as connection:
        connection.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        connection.execute(text("CREATE SCHEMA public"))
    peer_schema.reset(engine)
    return engine


def hopper(logs: Path, env: dict[str, str] | None = None) -> Stack:
    stack = Stack(real_env(**LIMITS, **(env or {})), logs)
    stack.cli("migrate")
    return stack


def purge(*queues: str) -> None:
    """Empties the named queues, so one run's messages never weigh on the next."""
    with Connection(BROKER_URL) as connection:
        for name in queues:
            channel = connection.channel()  # a refused purge closes its channel
            with contextlib.suppress(NotFound):  # not declared yet (a fresh vhost): nothing
                channel.queue_purge(name)


@contextmanager
def workers(stack: Stack, *queue_names: str) -> Iterator[list[Process]]:
    """A Hopper worker for each queue, stopped (and forgotten) after the block: 2 processes for
    a job queue, as the bare Celery peer has; the webhook deliveries' pool at its default size
    (``DELIVERY_THREADS``), as an operator runs it."""
    started = [
        stack.worker(name, concurrency=None if name == queues.WEBHOOKS else 2)
        for name in queue_names
    ]
    try:
        yield started
    finally:
        stop_all(started)
        for process in started:
            stack.processes.remove(process)


class Peers:
    """The bare peers: the submit app under gunicorn, and bare Celery draining its queue."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.env = {**real_env(), "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
        self.web_process: Process | None = None

    def web(self) -> Process:
        """The submit peer, under the web settings Hopper uses: 2 processes of 16 threads."""
        self.web_process = self._start(
            "peer-web",
            "gunicorn --worker-class gthread --workers 2 --threads 16 --keep-alive 5 "
            f"--bind 127.0.0.1:{self.port} --log-level warning bench.peers.submit:create_app()",
        )
        wait_until(self._ready, 30, "the submit peer to answer", self.web_process)
        return self.web_process

    @contextmanager
    def worker(self) -> Iterator[Process]:
        """Bare Celery on the peer's queue (prefork 2, prefetch 4), stopped after the block."""
        process = self._start(
            "peer-worker",
            f"celery -A bench.peers.drain worker -Q {peer_schema.QUEUE} -c 2 "
            "--prefetch-multiplier 4 --without-gossip --without-mingle -l warning",
        )
        try:
            yield process
        finally:
            process.stop()

    def stop(self) -> None:
        if self.web_process is not None:
            self.web_process.stop()

    def _start(self, name: str, command: str) -> Process:
        program, *args = shlex.split(command)
        return Process(name, [str(BIN / program), *args], self.env, self.logs)

    def _ready(self) -> bool:
        try:
            return requests.get(f"{self.base_url}/healthz", timeout=2).status_code == 200
        except requests.RequestException:
            return False
