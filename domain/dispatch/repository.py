"""The queries of fair dispatch. A job is *ready* while it is queued and not dispatched
(``published_at`` null: ix_jobs_ready), and *in flight* from its dispatch until a worker claims
it (``published_at`` set: ix_jobs_in_flight)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import ColumnElement, literal_column, or_, select, text, union_all, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from domain.dispatch.fairness import Share
from domain.dispatch.model import DispatchClock, DispatchShare
from domain.model import Job, Tenant
from domain.queue_control.model import job_paused
from domain.repositories import database_now

# Best first within a tenant; the same text as ix_jobs_ready's expression, so that the index
# serves the order (a bound parameter in its place would not match it).
PRIORITY_RANK = literal_column("(CASE priority WHEN 'high' THEN 0 WHEN 'normal' THEN 1 ELSE 2 END)")

# The tenants with ready jobs in a queue, one index probe each (a loose scan of ix_jobs_ready),
# however many jobs each has waiting.
_READY_TENANTS = text(
    """
    WITH RECURSIVE ready(tenant_id) AS (
        SELECT (SELECT tenant_id FROM jobs
                WHERE queue = :queue AND status = 'queued' AND published_at IS NULL
                ORDER BY tenant_id LIMIT 1)
        UNION ALL
        SELECT (SELECT j.tenant_id FROM jobs j
                WHERE j.queue = :queue AND j.status = 'queued' AND j.published_at IS NULL
                  AND j.tenant_id > ready.tenant_id
                ORDER BY j.tenant_id LIMIT 1)
        FROM ready WHERE ready.tenant_id IS NOT NULL
    )
    SELECT tenant_id FROM ready WHERE tenant_id IS NOT NULL
    """
)

# The queues with ready jobs, the same way.
_READY_QUEUES = text(
    """
    WITH RECURSIVE ready(queue) AS (
        SELECT (SELECT queue FROM jobs WHERE status = 'queued' AND published_at IS NULL
                ORDER BY queue LIMIT 1)
        UNION ALL
        SELECT (SELECT j.queue FROM jobs j
                WHERE j.status = 'queued' AND j.published_at IS NULL AND j.queue > ready.queue
                ORDER BY j.queue LIMIT 1)
        FROM ready WHERE ready.queue IS NOT NULL
    )
    SELECT queue FROM ready WHERE queue IS NOT NULL
    """
)


class DispatchRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def lock(self, queue: str) -> tuple[float, datetime]:
        """Take the queue's dispatch lock for this transaction (an upsert that always updates
        the row, so that it locks it too); returns its virtual time and the transaction's
        clock, in one round trip."""
        postgres = self.session.get_bind().dialect.name == "postgresql"
        upsert = (pg_insert if postgres else sqlite_insert)(DispatchClock)
        statement = (
            upsert.values(queue=queue, clock=0.0)
            .on_conflict_do_update(index_elements=["queue"], set_={"clock": DispatchClock.clock})
            .returning(DispatchClock.clock, database_now(self.session))
        )
        clock, now = self.session.execute(statement).one()
        return float(clock), now

    def in_flight(self, queue: str, since: datetime) -> dict[str, int]:
        """Per tenant, its jobs dispatched since ``since`` that no worker has claimed yet."""
        query = (
            select(Job.tenant_id, literal_column("count(*)"))
            .where(
                Job.queue == queue,
                Job.status == "queued",
                Job.published_at.is_not(None),
                Job.published_at >= since,
            )
            .group_by(Job.tenant_id)
        )
        return {row[0]: int(row[1]) for row in self.session.execute(query)}

    def ready_queues(self) -> list[str]:
        return list(self.session.scalars(_READY_QUEUES))

    def shares(self, queue: str) -> dict[str, Share]:
        """Each tenant with ready jobs in ``queue``: its weight and its pass there."""
        tenants = list(self.session.scalars(_READY_TENANTS, {"queue": queue}))
        if not tenants:
            return {}
        rows = self.session.execute(
            select(Tenant.id, Tenant.weight, DispatchShare.passed)
            .outerjoin(
                DispatchShare,
                (DispatchShare.tenant_id == Tenant.id) & (DispatchShare.queue == queue),
            )
            .where(Tenant.id.in_(tenants))
        )
        return {row.id: Share(weight=row.weight, passed=row.passed) for row in rows}

    def ready(
        self,
        queue: str,
        tenants: Sequence[str],
        now: datetime,
        each: int,
        held_back: Mapping[str, HeldBack] | None = None,
    ) -> dict[str, list[Job]]:
        """Up to ``each`` due jobs of every tenant in ``tenants``, best first, locked (another
        transaction that changes one meanwhile is not held up: SKIP LOCKED), leaving out the
        jobs of the keys ``held_back`` names for the tenant."""
        arms = [
            select(Job.id)
            .where(
                Job.queue == queue,
                Job.tenant_id == tenant,
                Job.status == "queued",
                Job.published_at.is_(None),
                Job.run_at <= now,
                Job.cancel_requested.is_(False),
                ~job_paused(),
                *_not_held_back((held_back or {}).get(tenant)),
            )
            .order_by(PRIORITY_RANK, Job.run_at, Job.id)
            .limit(each)
            .subquery()
            .select()
            for tenant in tenants
        ]
        if not arms:
            return {}
        ids = union_all(*arms) if len(arms) > 1 else arms[0]
        jobs = self.session.scalars(
            select(Job).where(Job.id.in_(ids)).with_for_update(skip_locked=True)
        ).all()
        ready: dict[str, list[Job]] = {}
        for job in sorted(jobs, key=_best_first):
            ready.setdefault(job.tenant_id, []).append(job)
        return ready

    def save(self, queue: str, passes: dict[str, float], clock: float) -> None:
        upsert = (
            pg_insert if self.session.get_bind().dialect.name == "postgresql" else sqlite_insert
        )
        if passes:
            rows = [{"queue": queue, "tenant_id": t, "passed": p} for t, p in passes.items()]
            statement = upsert(DispatchShare).values(rows)
            self.session.execute(
                statement.on_conflict_do_update(
                    index_elements=["queue", "tenant_id"],
                    set_={"passed": statement.excluded.passed},
                )
            )
        self.session.execute(
            update(DispatchClock).where(DispatchClock.queue == queue).values(clock=clock)
        )

    def forget_lost(self, before: datetime, limit: int) -> int:
        """Dispatched before ``before`` and never claimed: their messages are taken for lost,
        and the jobs are ready again (ix_jobs_in_flight)."""
        lost = (
            select(Job.id)
            .where(Job.status == "queued", Job.published_at < before)
            .limit(limit)
            .scalar_subquery()
        )
        result = self.session.execute(update(Job).where(Job.id.in_(lost)).values(published_at=None))
        return int(result.rowcount or 0)


@dataclass
class HeldBack:
    """A tenant's keys whose jobs may not go now: concurrency keys with no place left, and
    rate keys resting or with a job in flight."""

    concurrency: list[str] = field(default_factory=list)
    rate: list[str] = field(default_factory=list)


def _not_held_back(held_back: HeldBack | None) -> list[ColumnElement[bool]]:
    if held_back is None:
        return []
    found = []
    if held_back.concurrency:
        found.append(
            or_(Job.concurrency_key.is_(None), Job.concurrency_key.not_in(held_back.concurrency))
        )
    if held_back.rate:
        found.append(or_(Job.rate_key.is_(None), Job.rate_key.not_in(held_back.rate)))
    return found


_RANKS = {"high": 0, "normal": 1}


def _best_first(job: Job) -> tuple[int, datetime, str]:
    return (_RANKS.get(job.priority, 2), job.run_at, job.id)
