"""Reads and writes of schedules and their slots. Every read a client can reach is scoped to a
tenant here."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, func, select, tuple_
from sqlalchemy.orm import Session

from domain.model import Job, JobStatus, Tenant
from domain.schedules.model import Schedule, ScheduleRun

_FINISHED = [status.value for status in JobStatus if status.finished]


class ScheduleRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def get(self, tenant_id: str, schedule_id: str, *, lock: bool = False) -> Schedule | None:
        """The tenant's schedule; with ``lock``, held until the transaction ends, so that a
        change and a firing never interleave (the scheduler skips a locked schedule)."""
        query = select(Schedule).where(Schedule.id == schedule_id, Schedule.tenant_id == tenant_id)
        if lock:
            query = query.with_for_update()
        return self.session.scalars(query).first()

    def page(self, tenant_id: str, before_id: str | None, limit: int) -> Sequence[Schedule]:
        """Newest first, by id (ids are time-ordered): ix_schedules_tenant_id_id."""
        query = select(Schedule).where(Schedule.tenant_id == tenant_id)
        if before_id:
            query = query.where(Schedule.id < before_id)
        return self.session.scalars(query.order_by(Schedule.id.desc()).limit(limit)).all()

    def count_locked(self, tenant_id: str) -> int:
        """How many schedules the tenant has, with its row locked against another count until
        the transaction ends: two creations at once cannot both take the last place. NO KEY
        UPDATE leaves the tenant's jobs free to be inserted meanwhile (their foreign key takes
        KEY SHARE)."""
        self.session.execute(
            select(Tenant.id).where(Tenant.id == tenant_id).with_for_update(key_share=True)
        )
        query = select(func.count()).select_from(Schedule).where(Schedule.tenant_id == tenant_id)
        return int(self.session.scalar(query) or 0)

    def named(self, tenant_id: str, name: str) -> str | None:
        """The id of the tenant's schedule of that name, if there is one."""
        query = select(Schedule.id).where(Schedule.tenant_id == tenant_id, Schedule.name == name)
        return self.session.scalar(query)

    def due(self, now: datetime, limit: int) -> Sequence[Schedule]:
        """Enabled schedules whose next slot has come, locked; those another scheduler holds are
        skipped (ix_schedules_due)."""
        query = (
            select(Schedule)
            .where(Schedule.next_run_at.is_not(None), Schedule.next_run_at <= now)
            .where(Schedule.enabled.is_(True))
            .order_by(Schedule.next_run_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return self.session.scalars(query).all()

    def unfinished(self, job_id: str | None) -> bool:
        """Whether the job is still queued or running (a purged job has finished)."""
        if job_id is None:
            return False
        status = self.session.scalar(select(Job.status).where(Job.id == job_id))
        return status is not None and status not in _FINISHED

    def purge_runs(self, before: datetime, limit: int) -> int:
        """Delete up to ``limit`` slots older than ``before`` (ix_schedule_runs_slot)."""
        key = (ScheduleRun.schedule_id, ScheduleRun.slot)
        old = self.session.execute(
            select(*key).where(ScheduleRun.slot < before).order_by(ScheduleRun.slot).limit(limit)
        ).all()
        if old:
            self.session.execute(
                delete(ScheduleRun).where(tuple_(*key).in_([tuple(row) for row in old]))
            )
        return len(old)
