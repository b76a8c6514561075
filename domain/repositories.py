"""Repositories: the only place that builds queries. Every query a client can reach is scoped to a
tenant here, so no route can forget it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Any

from sqlalchemy import (
    ColumnElement,
    bindparam,
    case,
    delete,
    func,
    insert,
    literal,
    null,
    or_,
    select,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from domain.dispatch.waiting import WaitingRules
from domain.model import ApiKey, Attempt, AuditEvent, IdempotencyRecord, Job, JobStatus, Tenant
from domain.model.base import UTCDateTime
from domain.queue_control.model import job_paused
from domain.schedules.model import Schedule, ScheduleRun
from domain.webhooks.model import Endpoint, Event

# What a new job's row is given as values; its times come from the database's clock.
_NEW_JOB_FIELDS = (
    "id",
    "tenant_id",
    "type",
    "queue",
    "status",
    "priority",
    "payload",
    "sealed",
    "attempts",
    "attempts_total",
    "max_attempts",
    "timeout_seconds",
    "meta",
    "cancel_requested",
    "request_id",
    "schedule_id",
    "concurrency_key",
    "rate_key",
)


@dataclass(frozen=True)
class JobFilter:
    status: str | None = None
    type: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    schedule_id: str | None = None


class JobRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def insert(self, jobs: Sequence[Job], wanted_run_at: Sequence[datetime | None]) -> list[Job]:
        """Insert new jobs in one statement, their times by the database's clock: created now,
        due at the later of the run_at asked for and now, ready for the dispatcher (not
        published). Returns them as stored, in order."""
        now = database_now(self.session)
        wanted = func.coalesce(bindparam("wanted_run_at", type_=UTCDateTime()), now)
        statement = (
            insert(Job)
            .values(created_at=now, run_at=_later(self.session)(wanted, now), published_at=None)
            .returning(Job, sort_by_parameter_order=True)
        )
        rows = [
            {**{name: getattr(job, name) for name in _NEW_JOB_FIELDS}, "wanted_run_at": run_at}
            for job, run_at in zip(jobs, wanted_run_at, strict=True)
        ]
        return list(self.session.scalars(statement, rows))

    def get(self, tenant_id: str, job_id: str) -> Job | None:
        return self.session.scalars(
            select(Job).where(Job.id == job_id, Job.tenant_id == tenant_id)
        ).first()

    def read(self, tenant_id: str, job_id: str, rules: WaitingRules) -> Job | None:
        """The job as a client reads it: with why it waits, if it is queued, in the same
        statement."""
        row = self.session.execute(
            select(Job, self._waiting(rules)).where(Job.id == job_id, Job.tenant_id == tenant_id)
        ).first()
        return None if row is None else _explained(row[0], row[1])

    def _waiting(self, rules: WaitingRules) -> ColumnElement[str | None]:
        reason = rules.reason(database_now(self.session))
        return case((Job.status == JobStatus.QUEUED, reason), else_=null())

    def get_unscoped(self, job_id: str) -> Job | None:
        """For workers and the scheduler, which act on behalf of every tenant."""
        return self.session.get(Job, job_id, populate_existing=True)

    def with_clock(self, job_id: str) -> tuple[Job | None, datetime, bool, bool]:
        """The job (any tenant's), the transaction's clock, whether its tenant has an enabled
        webhook endpoint, and whether its queue is paused for it, in one round trip: a claim
        needs all four."""
        row = self.session.execute(
            select(
                Job,
                database_now(self.session).label("now"),
                _has_endpoints(),
                job_paused().label("paused"),
            )
            .where(Job.id == job_id)
            .execution_options(populate_existing=True)
        ).first()
        if row is None:
            return None, self._now(), False, False
        return row[0], row[1], row[2], row[3]

    def attempt_with_clock(
        self, job_id: str, attempt_id: str
    ) -> tuple[Job | None, Attempt | None, datetime, bool]:
        """A job, one of its attempts, the transaction's clock, and whether the job's tenant
        has an enabled webhook endpoint, in one round trip: a run's end needs all four."""
        row = self.session.execute(
            select(Job, Attempt, database_now(self.session).label("now"), _has_endpoints())
            .join(Attempt, Attempt.job_id == Job.id)
            .where(Job.id == job_id, Attempt.id == attempt_id)
            .execution_options(populate_existing=True)
        ).first()
        if row is None:
            return None, None, self._now(), False
        return row[0], row[1], row[2], row[3]

    def _now(self) -> datetime:
        return self.session.execute(select(database_now(self.session))).scalar_one()

    def page(
        self,
        tenant_id: str,
        filters: JobFilter,
        before_id: str | None,
        limit: int,
        rules: WaitingRules | None = None,
    ) -> Sequence[Job]:
        """Newest first, by id (ids are time-ordered): ix_jobs_tenant_id_id and its siblings
        (ix_jobs_tenant_id_schedule_id_id for a schedule's jobs); with ``rules``, each queued
        one says why it waits."""
        query = select(Job, self._waiting(rules) if rules else null()).where(
            Job.tenant_id == tenant_id
        )
        if filters.status:
            query = query.where(Job.status == filters.status)
        if filters.type:
            query = query.where(Job.type == filters.type)
        if filters.created_after:
            query = query.where(Job.created_at > filters.created_after)
        if filters.created_before:
            query = query.where(Job.created_at < filters.created_before)
        if filters.schedule_id:
            query = query.where(Job.schedule_id == filters.schedule_id)
        if before_id:
            query = query.where(Job.id < before_id)
        rows = self.session.execute(query.order_by(Job.id.desc()).limit(limit))
        return [_explained(job, reason) for job, reason in rows]

    def attempts(self, job_id: str) -> Sequence[Attempt]:
        return self.session.scalars(
            select(Attempt).where(Attempt.job_id == job_id).order_by(Attempt.number, Attempt.id)
        ).all()

    def attempt(self, attempt_id: str) -> Attempt | None:
        return self.session.get(Attempt, attempt_id, populate_existing=True)

    def lapsed(self, now: datetime, limit: int) -> Sequence[Job]:
        """Running jobs whose lease has lapsed (ix_jobs_lease)."""
        query = (
            select(Job)
            .where(Job.status == "running", Job.lease_expires_at < now)
            .order_by(Job.lease_expires_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return self.session.scalars(query).all()

    def ids_with(
        self,
        tenant_id: str,
        status: str,
        job_type: str | None,
        since: datetime | None,
        after_id: str | None,
        limit: int,
    ) -> list[str]:
        """A tenant's jobs in ``status`` (of ``job_type``; finished, or for unfinished ones
        created, at or after ``since``), by id after ``after_id`` (ix_jobs_tenant_id_status_id)."""
        query = select(Job.id).where(Job.tenant_id == tenant_id, Job.status == status)
        if job_type is not None:
            query = query.where(Job.type == job_type)
        if since is not None:
            finished = JobStatus(status).finished
            query = query.where((Job.finished_at if finished else Job.created_at) >= since)
        if after_id is not None:
            query = query.where(Job.id > after_id)
        return list(self.session.scalars(query.order_by(Job.id).limit(limit)))

    def running_on(self, workers: Sequence[str]) -> Sequence[tuple[Job, Attempt]]:
        """Running jobs whose current attempt runs on one of ``workers``, locked."""
        query = (
            select(Job, Attempt)
            .join(Attempt, Attempt.id == Job.current_attempt_id)
            .where(Job.status == "running", Attempt.worker.in_(workers))
            .with_for_update(of=Job)
            .execution_options(populate_existing=True)
        )
        return [(row[0], row[1]) for row in self.session.execute(query)]

    def purge_finished(self, before: datetime, limit: int) -> int:
        """Delete up to ``limit`` jobs that finished before ``before`` (ix_jobs_finished); their
        attempts go with them (ON DELETE CASCADE)."""
        oldest = (
            select(Job.id)
            .where(Job.status.in_(("succeeded", "failed", "canceled")), Job.finished_at < before)
            .order_by(Job.finished_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        ids = list(self.session.scalars(oldest))
        if ids:
            self.session.execute(delete(Job).where(Job.id.in_(ids)))
        return len(ids)

    def locked(self, tenant_id: str, job_id: str) -> Job | None:
        return self.session.scalars(
            select(Job).where(Job.id == job_id, Job.tenant_id == tenant_id).with_for_update()
        ).first()

    def erase(self, job_id: str) -> None:
        """Delete the job and every row that holds any of it: its attempts (ON DELETE
        CASCADE), its webhook events (their bodies are the job's representation) and so their
        deliveries and attempts (CASCADE); the schedule rows that name it keep no id."""
        self.session.execute(delete(Event).where(Event.job_id == job_id))
        self.session.execute(
            update(ScheduleRun).where(ScheduleRun.job_id == job_id).values(job_id=None)
        )
        self.session.execute(
            update(Schedule).where(Schedule.last_job_id == job_id).values(last_job_id=None)
        )
        self.session.execute(delete(Job).where(Job.id == job_id))

    def mark_published(self, job_ids: list[str], now: datetime) -> None:
        # A plain UPDATE: publishing is not a state change and must not race a claim.
        self.session.execute(update(Job).where(Job.id.in_(job_ids)).values(published_at=now))

    def mark_unpublished(self, job_ids: list[str]) -> None:
        self.session.execute(update(Job).where(Job.id.in_(job_ids)).values(published_at=None))

    def ownership(self, job_id: str, attempt_id: str) -> tuple[bool, bool]:
        """(the attempt still owns the running job, cancellation requested): one PK lookup."""
        row = self.session.execute(
            select(Job.current_attempt_id, Job.status, Job.cancel_requested).where(Job.id == job_id)
        ).first()
        if row is None:
            return False, False
        return row.current_attempt_id == attempt_id and row.status == "running", bool(
            row.cancel_requested
        )

    def renew_lease(self, job_id: str, attempt_id: str, until: datetime) -> tuple[bool, bool]:
        """Extend a running attempt's lease. Returns (still owned, cancel requested).

        A plain UPDATE that leaves ``version`` alone: renewing is not a state change, so it
        never makes a concurrent transition fail.
        """
        result = self.session.execute(
            update(Job)
            .where(Job.id == job_id, Job.current_attempt_id == attempt_id, Job.status == "running")
            .values(lease_expires_at=until)
            .returning(Job.cancel_requested)
        ).first()
        return (result is not None, bool(result and result[0]))


class TenantRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def get(self, tenant_id: str) -> Tenant | None:
        return self.session.get(Tenant, tenant_id)

    def locked(self, tenant_id: str) -> Tenant | None:
        """The tenant, its row locked until the transaction ends (what counts its resources
        against a quota holds them still)."""
        return self.session.get(Tenant, tenant_id, with_for_update=True)

    def by_name(self, name: str) -> Tenant | None:
        return self.session.scalars(select(Tenant).where(Tenant.name == name)).first()


class KeyRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def by_hash(self, key_hash: str) -> ApiKey | None:
        return self.session.scalars(select(ApiKey).where(ApiKey.key_hash == key_hash)).first()

    def get(self, tenant_id: str, key_id: str) -> ApiKey | None:
        return self.session.scalars(
            select(ApiKey).where(ApiKey.id == key_id, ApiKey.tenant_id == tenant_id)
        ).first()

    def page(self, tenant_id: str, before_id: str | None, limit: int) -> Sequence[ApiKey]:
        query = select(ApiKey).where(ApiKey.tenant_id == tenant_id)
        if before_id:
            query = query.where(ApiKey.id < before_id)
        return self.session.scalars(query.order_by(ApiKey.id.desc()).limit(limit)).all()

    def touch(self, key_id: str, now: datetime, stale_before: datetime) -> None:
        self.session.execute(
            update(ApiKey)
            .where(
                ApiKey.id == key_id,
                or_(ApiKey.last_used_at.is_(None), ApiKey.last_used_at < stale_before),
            )
            .values(last_used_at=now)
        )

    def audit_page(self, tenant_id: str, before_id: str | None, limit: int) -> Sequence[AuditEvent]:
        query = select(AuditEvent).where(AuditEvent.tenant_id == tenant_id)
        if before_id:
            query = query.where(AuditEvent.id < before_id)
        return self.session.scalars(query.order_by(AuditEvent.id.desc()).limit(limit)).all()


class RecordRepository:
    """Idempotency records and audit events: kept for a while, then purged in small batches."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def claim_idempotency(self, **values: Any) -> bool:
        """Insert an idempotency record unless one has its key (one statement, the database's
        clock): whether this one did. A concurrent claim waits for the other to commit or not."""
        upsert = pg_insert if _is_postgres(self.session) else sqlite_insert
        now = database_now(self.session)
        inserted = self.session.execute(
            upsert(IdempotencyRecord)
            .values(**values, created_at=now, updated_at=now)
            .on_conflict_do_nothing()
            .returning(IdempotencyRecord.key)
        )
        return inserted.first() is not None

    def purge_idempotency(self, before: datetime, limit: int) -> int:
        columns = (IdempotencyRecord.tenant_id, IdempotencyRecord.route, IdempotencyRecord.key)
        old = self.session.execute(
            select(*columns).where(IdempotencyRecord.created_at < before).limit(limit)
        ).all()
        if old:
            self.session.execute(
                delete(IdempotencyRecord).where(tuple_(*columns).in_([tuple(row) for row in old]))
            )
        return len(old)

    def purge_audit(self, before: datetime, limit: int) -> int:
        ids = list(
            self.session.scalars(
                select(AuditEvent.id)
                .where(AuditEvent.at < before)
                .order_by(AuditEvent.at)
                .limit(limit)
            )
        )
        if ids:
            self.session.execute(delete(AuditEvent).where(AuditEvent.id.in_(ids)))
        return len(ids)


def _explained(job: Job, reason: str | None) -> Job:
    if reason is not None:
        job.waits_for(reason)
    return job


@cache
def _has_endpoints() -> ColumnElement[bool]:
    """Whether the selected job's tenant has an enabled webhook endpoint (a transition with no
    endpoint to tell writes no events, and need not look them up). Built once, as
    ``job_paused``."""
    return (
        select(Endpoint.id)
        .where(Endpoint.tenant_id == Job.tenant_id, Endpoint.enabled.is_(True))
        .exists()
        .label("has_endpoints")
    )


def database_now(session: Session) -> ColumnElement[Any]:
    """The transaction's clock as SQL, so that a statement need not ask for it first. SQLite's
    CURRENT_TIMESTAMP has no fraction of a second: there this process's clock is bound instead,
    as ``UnitOfWork.now()`` does."""
    if _is_postgres(session):
        return func.now()
    return literal(datetime.now(UTC), UTCDateTime())


def _later(session: Session) -> Any:
    """The SQL function that picks the later of two times."""
    return func.greatest if _is_postgres(session) else func.max


def _is_postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"
