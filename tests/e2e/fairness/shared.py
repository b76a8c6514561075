"""What the fairness tests read of the database: attempts by their start, finished jobs, and
whether a worker runs one now."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine, text

from tests.e2e.test_worker_tree import descendants


def attempts(db: Engine, tenant_id: str) -> list[tuple[str, datetime, datetime | None]]:
    """(job, start, end) of every attempt of the tenant's jobs, by start."""
    with db.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT a.job_id, a.started_at, a.finished_at FROM job_attempts a"
                " JOIN jobs j ON j.id = a.job_id WHERE j.tenant_id = :t"
                " ORDER BY a.started_at, a.id"
            ),
            {"t": tenant_id},
        ).all()
    return [(row[0], row[1], row[2]) for row in rows]


def finished(db: Engine, tenant_id: str) -> int:
    with db.connect() as connection:
        return int(
            connection.execute(
                text(
                    "SELECT count(*) FROM jobs WHERE tenant_id = :t"
                    " AND status IN ('succeeded', 'failed', 'canceled')"
                ),
                {"t": tenant_id},
            ).scalar_one()
        )


def runs_on(db: Engine, worker_pid: int) -> bool:
    """Whether a pool process of that worker runs an attempt now."""
    pids = {str(pid) for pid in descendants(worker_pid)}
    with db.connect() as connection:
        open_runs = connection.scalars(
            text("SELECT worker FROM job_attempts WHERE finished_at IS NULL AND worker IS NOT NULL")
        ).all()
    return any(worker.rsplit(":", 1)[-1] in pids for worker in open_runs)
