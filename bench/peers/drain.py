"""The drain peer: bare Celery (prefork, 2 processes, prefetch 4, late acks) running one
``UPDATE … WHERE id = ?`` a task.

    celery -A bench.peers.drain worker -Q bench_peer -c 2 --prefetch-multiplier 4
"""

from __future__ import annotations

import os
from typing import Any

from celery import Celery
from celery.signals import worker_process_init
from sqlalchemy import create_engine, func, update
from sqlalchemy.engine import Engine

from bench.peers.schema import QUEUE, jobs, queue

TASK = "bench_peer.run"

app = Celery("bench_peer", broker=os.environ.get("BROKER_URL", "memory://"), set_as_current=False)
app.conf.update(
    task_queues=[queue()],
    task_default_queue=QUEUE,
    task_acks_late=True,
    task_ignore_result=True,
    worker_prefetch_multiplier=4,
    broker_transport_options={"confirm_publish": True},
    worker_hijack_root_logger=False,
)

_engine: Engine | None = None


@worker_process_init.connect
def _connect(**_: Any) -> None:
    global _engine
    _engine = create_engine(os.environ["DATABASE_URL"], pool_size=1, max_overflow=0)


@app.task(name=TASK)
def run(job_id: str) -> None:
    assert _engine is not None
    with _engine.begin() as connection:
        connection.execute(
            update(jobs)
            .where(jobs.c.id == job_id)
            .values(status="succeeded", finished_at=func.now())
        )
