"""What the benchmark runs: a real Hopper (gunicorn, celery workers, the scheduler) and the bare
peers, each a set of real processes on 127.0.0.1 that share the machine in turn."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import requests
from kombu import Connection, Queue
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine

from bench.peers import schema as peer_schema
from tests.services import BROKER_URL, DATABASE_URL, real_env
from tests.stack import Process, Stack, free_port, wait_until

BIN = Path(sys.executable).parent
# Limits on Redis stay on, and high enough that the load measures the work, not the refusals.
LIMITS = {
    "HOPPER_RATE_LIMIT_DEFAULT": "10000000 per 10 seconds",
    "HOPPER_RATE_LIMIT_CREATE": "10000000 per 10 seconds",
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
        channel = connection.channel()
        for name in queues:
            Queue(name, channel=channel).purge()


class Peers:
    """The bare peers: the submit app under gunicorn, and bare Celery draining its queue."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.env = {**real_env(), "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
        self.processes: list[Process] = []

    def web(self) -> Process:
        process = Process(
            "peer-web",
            [
                str(BIN / "gunicorn"),
                "--worker-class",
                "gthread",
                "--workers",
                "2",
                "--threads",
                "16",
                "--keep-alive",
                "5",
                "--bind",
                f"127.0.0.1:{self.port}",
                "--log-level",
                "warning",
                "bench.peers.submit:create_app()",
            ],
            self.env,
            self.logs,
        )
        self.processes.append(process)
        wait_until(self._ready, 30, "the submit peer to answer", process)
        return process

    def worker(self) -> Process:
        process = Process(
            "peer-worker",
            [
                str(BIN / "celery"),
                "-A",
                "bench.peers.drain",
                "worker",
                "-Q",
                peer_schema.QUEUE,
                "-c",
                "2",
                "--prefetch-multiplier",
                "4",
                "--without-gossip",
                "--without-mingle",
                "-l",
                "warning",
            ],
            self.env,
            self.logs,
        )
        self.processes.append(process)
        return process

    def stop(self) -> None:
        deadline = time.monotonic() + 20
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            process.finish(deadline)
        self.processes.clear()

    def _ready(self) -> bool:
        try:
            return requests.get(f"{self.base_url}/healthz", timeout=2).status_code == 200
        except requests.RequestException:
            return False
