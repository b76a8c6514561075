"""The fake unit of work keeps the promises of the real one, so service tests over it mean
something: nothing is stored or published without a commit, and racing writers conflict."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.exc import StaleDataError

from domain.ids import new_id
from domain.model import Tenant
from domain.ports import RunJob
from tests.unit.builders import NOW, make_job
from tests.unit.fakes import FakeWiring


def test_nothing_is_stored_or_published_without_commit(wiring: FakeWiring) -> None:
    job = make_job()
    with wiring.uow() as uow:
        uow.add(job)
        uow.publish_after_commit(RunJob(job.id, "default", "normal"))
    assert job.id not in wiring.store.jobs
    assert wiring.publisher.published == []


def test_changes_to_loaded_rows_are_dropped_without_commit(wiring: FakeWiring) -> None:
    job = make_job()
    wiring.store.put(job)
    with wiring.uow() as uow:
        uow.jobs.get_unscoped(job.id).status = "canceled"
    assert wiring.store.job(job.id).status == "queued"


def test_rollback_drops_pending_work(wiring: FakeWiring) -> None:
    job = make_job()
    with wiring.uow() as uow:
        uow.add(job)
        uow.publish_after_commit(RunJob(job.id, "default", "normal"))
        uow.rollback()
        uow.commit()
    assert job.id not in wiring.store.jobs
    assert wiring.publisher.published == []


def test_commit_stores_then_publishes_and_bumps_the_version(wiring: FakeWiring) -> None:
    job = make_job(version=None)
    command = RunJob(job.id, "default", "normal")
    with wiring.uow() as uow:
        uow.add(job)
        uow.publish_after_commit(command)
        uow.commit()
    assert wiring.store.job(job.id).version == 1
    assert wiring.publisher.published == [command]
    with wiring.uow() as uow:
        uow.jobs.get_unscoped(job.id).priority = "high"
        uow.commit()
    assert wiring.store.job(job.id).version == 2
    assert wiring.store.job(job.id).priority == "high"


def test_two_writers_of_one_job_conflict(wiring: FakeWiring) -> None:
    job = make_job()
    wiring.store.put(job)
    with wiring.uow() as first, wiring.uow() as second:
        first.jobs.get_unscoped(job.id).priority = "high"
        second.jobs.get_unscoped(job.id).priority = "low"
        first.commit()
        with pytest.raises(StaleDataError):
            second.commit()
    assert wiring.store.job(job.id).priority == "high"


def test_duplicate_tenant_names_violate_integrity(wiring: FakeWiring) -> None:
    wiring.store.put(Tenant(id=new_id("ten"), name="acme", created_at=NOW))
    with wiring.uow() as uow:
        uow.add(Tenant(id=new_id("ten"), name="acme", created_at=NOW))
        with pytest.raises(IntegrityError):
            uow.commit()
    assert len(wiring.store.tenants) == 1


def test_now_is_fixed_for_the_transaction(wiring: FakeWiring) -> None:
    with wiring.uow() as uow:
        first = uow.now()
        wiring.store.advance(10)
        assert uow.now() == first
    with wiring.uow() as uow:
        assert (uow.now() - first).total_seconds() == 10
