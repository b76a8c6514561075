"""What the unit of work does on PostgreSQL only: the transaction's clock is the database's, and a
committed transaction announces the jobs it finished on ``hopper_job_finished`` (and a rolled
back one announces nothing)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, timedelta

import psycopg
import pytest
from sqlalchemy import text

from domain.commands import SubmitJob
from domain.unit_of_work import FINISHED_CHANNEL
from hopper.bootstrap import Container
from tests import services
from tests.factories import TenantKeys


@pytest.fixture
def listener(migrated_database: str) -> Iterator[psycopg.Connection]:
    connection = services.listening(FINISHED_CHANNEL)
    yield connection
    connection.close()


def heard(connection: psycopg.Connection, timeout: float = 0.5) -> list[tuple[str, str]]:
    return [(n.channel, n.payload) for n in connection.notifies(timeout=timeout, stop_after=10)]


def submit(container: Container, tenant: TenantKeys, n: int = 1) -> list[str]:
    principal = container.access.authenticate(tenant.admin)
    commands = [SubmitJob(type="echo", payload={"message": "x"}) for _ in range(n)]
    return [job.id for job in container.jobs.submit(principal, commands)]


def test_the_clock_is_the_databases_and_fixed_for_the_transaction(container: Container) -> None:
    with container.uow() as uow:
        first = uow.now()
        assert first.tzinfo is UTC
        database_now = uow.session.execute(text("SELECT now()")).scalar_one()
        assert first == database_now  # now() is the transaction's start on PostgreSQL
        assert uow.now() is first
    with container.uow() as uow:
        assert uow.now() > first
        assert uow.now() - first < timedelta(seconds=30)


def test_finished_jobs_are_announced_once_in_order_on_commit(
    container: Container, tenant: TenantKeys, listener: psycopg.Connection
) -> None:
    job_ids = submit(container, tenant, 3)
    assert heard(listener, 0.2) == []  # submitting finishes nothing
    with container.uow() as uow:
        for job_id in job_ids[:2]:
            job = uow.jobs.get_unscoped(job_id)
            assert job is not None
            job.cancel(uow.now())
        uow.commit()
        uow.commit()  # nothing new: nothing announced again
    assert heard(listener) == [(FINISHED_CHANNEL, j) for j in sorted(job_ids[:2])]


def test_a_rolled_back_finish_is_not_announced(
    container: Container, tenant: TenantKeys, listener: psycopg.Connection
) -> None:
    [job_id] = submit(container, tenant)
    with container.uow() as uow:
        job = uow.jobs.get_unscoped(job_id)
        assert job is not None
        job.cancel(uow.now())
        uow.session.flush()
        uow.rollback()
        uow.commit()
    with container.uow() as uow:
        job = uow.jobs.get_unscoped(job_id)
        assert job is not None
        job.cancel(uow.now())
        uow.session.flush()  # noted, never committed
    assert heard(listener) == []
    with container.uow() as uow:
        assert uow.jobs.get_unscoped(job_id).status == "queued"  # type: ignore[union-attr]
