"""Fault tests: each causes a fault for real (a killed process, a cut connection) against real
processes and services, then checks every job's final state in the database. Proxies stand
between a process and a service, so the shared services themselves are never touched."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from tests.services import real_env
from tests.stack import Stack

# Short leases and thresholds so that faults heal within a test's patience.
FAULT_SETTINGS = {
    "HOPPER_LEASE_SECONDS": "2",
    "HOPPER_REPUBLISH_AFTER_SECONDS": "3",
    "HOPPER_STOP_GRACE_SECONDS": "1",
}


def fault_env(**extra: str) -> dict[str, str]:
    return real_env(**{**FAULT_SETTINGS, **extra})


@pytest.fixture
def stack(migrated_database: str, tmp_path: Path) -> Iterator[Stack]:
    running = Stack(fault_env(), tmp_path)
    try:
        yield running
    finally:
        running.stop()


def job_states(db: Engine, tenant_id: str) -> dict[str, str]:
    with db.connect() as connection:
        rows = connection.execute(
            text("SELECT id, status FROM jobs WHERE tenant_id = :t"), {"t": tenant_id}
        )
        return {row.id: row.status for row in rows}


def count_finished(db: Engine, tenant_id: str) -> int:
    return sum(
        1 for s in job_states(db, tenant_id).values() if s in ("succeeded", "failed", "canceled")
    )
