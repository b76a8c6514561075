"""Reads and writes of queue controls: pauses, and what waits in each queue and why."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Row,
    Select,
    String,
    delete,
    func,
    literal_column,
    select,
    union_all,
    update,
)
from sqlalchemy.orm import Session

from domain.dispatch.waiting import WaitingRules
from domain.model import Attempt, Job
from domain.queue_control.model import EVERY_TENANT, QueuePause


class QueueRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def pauses(self, tenant_id: str | None) -> Sequence[QueuePause]:
        """The pauses that hold ``tenant_id``'s queues (every pause, with None)."""
        query = select(QueuePause).order_by(QueuePause.queue, QueuePause.tenant_id)
        if tenant_id is not None:
            query = query.where(QueuePause.tenant_id.in_((tenant_id, EVERY_TENANT)))
        return self.session.scalars(query).all()

    def runs(self) -> Sequence[Row[tuple[str | None, str, str]]]:
        """(worker, job id, type) of every running job (ix_jobs_lease)."""
        return self.session.execute(
            select(Attempt.worker, Job.id, Job.type)
            .join(Attempt, Attempt.id == Job.current_attempt_id)
            .where(Job.status == "running")
            .order_by(Attempt.worker, Job.id)
        ).all()

    def pause(self, queue: str, tenant_id: str, now: datetime) -> bool:
        """Pause ``queue`` for the tenant (``*``: every tenant); False if it was already. Its
        jobs in flight leave the window, so that they hold no place there while they wait
        (their messages are dropped when a worker takes them)."""
        if self.session.get(QueuePause, (queue, tenant_id)) is not None:
            return False
        self.session.add(QueuePause(queue=queue, tenant_id=tenant_id, paused_at=now))
        self._undispatch(queue, tenant_id)
        return True

    def resume(self, queue: str, tenant_id: str) -> bool:
        """Lift the pause; the dispatcher takes the queue's waiting jobs again."""
        gone = self.session.execute(
            delete(QueuePause).where(QueuePause.queue == queue, QueuePause.tenant_id == tenant_id)
        )
        if not gone.rowcount:
            return False
        self._undispatch(queue, tenant_id)
        return True

    def _undispatch(self, queue: str, tenant_id: str) -> None:
        jobs = update(Job).where(
            Job.queue == queue, Job.status == "queued", Job.published_at.is_not(None)
        )
        if tenant_id != EVERY_TENANT:
            jobs = jobs.where(Job.tenant_id == tenant_id)
        self.session.execute(jobs.values(published_at=None))

    def figures(
        self, now: datetime, tenant_id: str | None, rules: WaitingRules
    ) -> Sequence[Row[tuple[str, str, int, datetime]]]:
        """Per queue and reason (``domain.queues.WAITING_REASONS``, and ``running``): how many
        jobs, and since when the oldest has been due."""
        return self.session.execute(figures_statement(now, tenant_id, rules)).all()


def figures_statement(now: datetime, tenant_id: str | None, rules: WaitingRules) -> Select[Any]:
    """One statement over the unfinished jobs: queue, reason, count, the oldest ``run_at``.
    Queued and running jobs are read apart, each by its partial index (ix_jobs_due,
    ix_jobs_lease; one tenant's by ix_jobs_tenant_id_status_id)."""
    reason = rules.reason(now)
    queued = select(Job.queue, Job.run_at, reason.label("reason")).where(Job.status == "queued")
    running = select(Job.queue, Job.run_at, literal_column("'running'", String).label("reason"))
    running = running.where(Job.status == "running")
    if tenant_id is not None:
        queued = queued.where(Job.tenant_id == tenant_id)
        running = running.where(Job.tenant_id == tenant_id)
    rows = union_all(queued, running).subquery()
    return select(
        rows.c.queue,
        rows.c.reason,
        func.count().label("count"),
        func.min(rows.c.run_at).label("oldest"),
    ).group_by(rows.c.queue, rows.c.reason)
