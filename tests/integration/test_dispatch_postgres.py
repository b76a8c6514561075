"""Fair dispatch on PostgreSQL: dispatchers racing over one queue fill its window once between
them, and a ring after a commit wakes a listening dispatcher (not its periodic pass). Each test
moves its jobs to a queue of its own, so that no other test's jobs share its window."""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

from sqlalchemy import Engine, event, text, update

from domain.auth import Principal
from domain.commands import SubmitJob
from domain.dispatch.service import DispatchService
from domain.model import Job, Role
from domain.ports import RunJob
from domain.unit_of_work import UnitOfWork
from hopper.bootstrap import Container
from tests.factories import TenantKeys
from tests.services import DATABASE_URL
from tests.unit.fakes import FakePublisher
from workers.bell import PostgresBell
from workers.dispatcher import Dispatcher


def jobs_in_a_queue_of_their_own(container: Container, tenant: TenantKeys, count: int) -> str:
    who = Principal(tenant.tenant_id, "key_test", Role.SUBMITTER)
    commands = [SubmitJob(type="echo", payload={"message": str(n)}) for n in range(count)]
    ids = [job.id for job in container.jobs.submit(who, commands, batch=True)]
    queue = f"q-{uuid.uuid4().hex[:12]}"
    with container.uow() as uow:
        uow.session.execute(update(Job).where(Job.id.in_(ids)).values(queue=queue))
        uow.commit()
    return queue


def service(container: Container, publisher: FakePublisher, window: int) -> DispatchService:
    return DispatchService(lambda: UnitOfWork(container.session_factory, publisher), window)


def in_flight(db: Engine, queue: str) -> int:
    with db.connect() as connection:
        return int(
            connection.execute(
                text(
                    "SELECT count(*) FROM jobs WHERE queue = :q AND status = 'queued'"
                    " AND published_at IS NOT NULL"
                ),
                {"q": queue},
            ).scalar_one()
        )


def test_racing_dispatchers_fill_a_window_once_between_them(
    container: Container, tenant: TenantKeys, db: Engine
) -> None:
    queue = jobs_in_a_queue_of_their_own(container, tenant, 60)
    publisher = FakePublisher()
    dispatch = service(container, publisher, window=10)
    start = threading.Barrier(4)
    counts: list[int] = []

    def slow_after_counting(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if "count(*)" in statement and "published_at >=" in statement:
            # A wide race: each racer chooses well after it counted, and after the one before
            # it has committed its choice. Only the queue's lock keeps it from choosing again.
            time.sleep(0.05 * int(threading.current_thread().name.rsplit("-", 1)[-1]))

    def race() -> None:
        start.wait()
        counts.extend(dispatch.fill(queue) for _ in range(3))

    with db.begin() as connection:  # the queue's lock exists (its first insert would serialize)
        connection.execute(
            text("INSERT INTO dispatch_clocks (queue, clock) VALUES (:q, 0)"), {"q": queue}
        )
    racers = [threading.Thread(target=race, name=f"racer-{n}") for n in range(4)]
    event.listen(container.engine, "after_cursor_execute", slow_after_counting)
    try:
        for racer in racers:
            racer.start()
        for racer in racers:
            racer.join()
    finally:
        event.remove(container.engine, "after_cursor_execute", slow_after_counting)
    sent = [c.job_id for c in publisher.published if isinstance(c, RunJob)]
    # One tenant alone holds at most nine tenths of the window: 9 of 10, once each.
    assert sum(counts) == 9 and len(sent) == 9 and len(set(sent)) == 9, counts
    assert in_flight(db, queue) == 9


def test_a_ring_wakes_a_listening_dispatcher(
    container: Container, tenant: TenantKeys, db: Engine
) -> None:
    queue = jobs_in_a_queue_of_their_own(container, tenant, 3)
    publisher = FakePublisher()
    listener = Dispatcher(service(container, publisher, window=100), DATABASE_URL, idle_pass=60)
    listener.start()
    try:
        assert listener.listening.wait(10), "the dispatcher did not start listening"
        time.sleep(0.5)  # its first pass, over every queue, is done
        publisher.published.clear()
        with db.begin() as connection:  # jobs come back ready, as a retry would make them
            connection.execute(
                text("UPDATE jobs SET published_at = NULL WHERE queue = :q"), {"q": queue}
            )
        rang = time.monotonic()
        PostgresBell(container.engine).ring([queue])
        deadline = rang + 5
        while time.monotonic() < deadline and in_flight(db, queue) < 3:
            time.sleep(0.01)
        assert in_flight(db, queue) == 3, "the ring went unheard"
        assert time.monotonic() - rang < 5  # well before its periodic pass, 60 s away
    finally:
        listener.stop()
