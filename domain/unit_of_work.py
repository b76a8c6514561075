"""The unit of work: one database transaction, its repositories, and the commands to publish once
it has committed (never before: a worker must find the row it is told about)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Protocol

import structlog
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, OperationalError, StatementError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Session, sessionmaker

from domain.dispatch.key_repository import KeyLimitRepository
from domain.dispatch.repository import DispatchRepository
from domain.errors import StorageUnavailable
from domain.model import Job
from domain.ports import Command, DeliverWebhook, Publisher, PublishFailed, RunJob
from domain.repositories import JobRepository, KeyRepository, RecordRepository, TenantRepository
from domain.webhooks.outbox import write_job_events
from domain.webhooks.repository import WebhookRepository

log = structlog.get_logger(__name__)

# PostgreSQL channel on which a committed transaction announces the jobs it finished (a trigger
# sends it: migration 0007).
FINISHED_CHANNEL = "hopper_job_finished"


class CommitHook(Protocol):
    def before_commit(self, session: Session, now: Callable[[], datetime]) -> None:
        """Inside the transaction, just before it commits (may still refuse it by raising).
        ``now()`` reads the transaction's clock, a round trip the first time: call it only if
        the hook has something to write."""
        ...

    def after_commit(self) -> None:
        """Once it has committed."""
        ...


class UnitOfWork:
    def __init__(
        self,
        session_factory: sessionmaker[Session],
        publisher: Publisher,
        hooks: Sequence[CommitHook] = (),
    ) -> None:
        self._session_factory = session_factory
        self._publisher = publisher
        self._hooks = hooks
        self._pending: list[Command] = []
        self._now: datetime | None = None
        self._unheard: set[str] = set()

    def __enter__(self) -> UnitOfWork:
        self.session = self._session_factory()
        self.jobs = JobRepository(self.session)
        self.tenants = TenantRepository(self.session)
        self.keys = KeyRepository(self.session)
        self.webhooks = WebhookRepository(self.session)
        self.records = RecordRepository(self.session)
        self.dispatch = DispatchRepository(self.session)
        self.key_limits = KeyLimitRepository(self.session)
        self._pending = []
        self._now = None
        self._unheard = set()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # close() rolls back whatever is uncommitted and leaves loaded objects readable.
        with contextlib.suppress(DBAPIError):
            self.session.close()
        if isinstance(exc, PoolTimeout) or (
            isinstance(exc, OperationalError | StatementError) and _connection_problem(exc)
        ):
            raise StorageUnavailable("the database is unavailable") from exc

    def now(self) -> datetime:
        """The database's clock, fixed for the transaction: leases, run_at and backoff use it."""
        if self._now is None:
            if self.session.get_bind().dialect.name == "postgresql":
                value = self.session.execute(text("SELECT now()")).scalar_one()
                self._now = value.astimezone(UTC)
            else:
                self._now = datetime.now(UTC)
        return self._now

    def fix_clock(self, now: datetime) -> None:
        """The transaction's clock as a statement already read it (see ``now``)."""
        if self._now is None:
            self._now = now.astimezone(UTC)

    def no_endpoints(self, tenant_id: str) -> None:
        """This transaction read that the tenant has no enabled webhook endpoint: its job
        transitions write no events, and the outbox need not look the endpoints up again."""
        self._unheard.add(tenant_id)

    def add(self, *objects: Any) -> None:
        self.session.add_all(objects)

    def publish_after_commit(self, command: Command) -> None:
        self._pending.append(command)

    def commit(self) -> None:
        self.session.flush()
        self._write_outbox()
        for hook in self._hooks:
            hook.before_commit(self.session, self.now)
        self.session.commit()
        for hook in self._hooks:
            hook.after_commit()
        pending, self._pending = self._pending, []
        if pending:
            self._publish(pending)

    def rollback(self) -> None:
        self.session.rollback()
        self._pending = []

    def _write_outbox(self) -> None:
        """Job transitions write their webhook events and deliveries in this same transaction."""
        for obj in list(self.session.identity_map.values()):
            if not isinstance(obj, Job):
                continue
            events = obj.take_events()
            if not events or obj.tenant_id in self._unheard:
                continue
            for delivery_id in write_job_events(self.session, obj, events, self.now()):
                self.publish_after_commit(DeliverWebhook(delivery_id, obj.request_id))
        self.session.flush()

    def _publish(self, commands: list[Command]) -> None:
        try:
            self._publisher.publish(commands)
        except PublishFailed as exc:
            log.warning("publish_failed", jobs=len(commands), error=str(exc))
            self.hand_back(commands)

    def hand_back(self, commands: list[Command]) -> None:
        """Commands the broker did not take go back to the scheduler. Their rows are committed
        as queued: clearing published_at lets it publish them at once rather than after
        HOPPER_REPUBLISH_AFTER_SECONDS. If the database fails too, that threshold still holds."""
        try:
            job_ids = [c.job_id for c in commands if isinstance(c, RunJob)]
            delivery_ids = [c.delivery_id for c in commands if isinstance(c, DeliverWebhook)]
            if job_ids:
                self.jobs.mark_unpublished(job_ids)
            if delivery_ids:
                self.webhooks.mark_published(delivery_ids, None)
            self.session.commit()
        except DBAPIError as exc:
            log.warning("hand_back_failed", commands=len(commands), error=str(exc))
            self.session.rollback()


def _connection_problem(exc: BaseException) -> bool:
    if isinstance(exc, OperationalError):
        return True
    return isinstance(getattr(exc, "orig", None), OperationalError)
