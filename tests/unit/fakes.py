"""In-memory stand-ins for the database, with the interface of ``domain.unit_of_work.UnitOfWork``.

``FakeStore`` holds the committed rows. Each ``FakeUnitOfWork`` works on copies of the rows it
reads and writes them back only on ``commit()``, so a service that forgets to commit changes
nothing, and leaving the ``with`` block without committing rolls back as ``Session.close()``
does. A job's ``version`` is checked and bumped on commit the way the mapper's
``version_id_col`` does it, so two units of work that move the same job race exactly as they
would on the database: the second commit raises ``StaleDataError``. Commands given to
``publish_after_commit`` reach the publisher only after a successful commit.
"""

from __future__ import annotations

import copy
import functools
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any

from sqlalchemy import inspect as sa_inspect
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.exc import StaleDataError

from domain.job_types import Registry, build_registry
from domain.key_cache import KeyCache
from domain.model import ApiKey, Attempt, AuditEvent, Job, Tenant
from domain.ports import Command, PublishFailed, RunJob
from domain.repositories import JobFilter
from domain.services.access import AccessService
from domain.services.execution import ExecutionService
from domain.services.jobs import JobService
from domain.services.scheduling import SchedulerService
from domain.settings import Settings

TABLES: tuple[type, ...] = (Job, Attempt, Tenant, ApiKey, AuditEvent)


@functools.cache
def columns(cls: type) -> tuple[str, ...]:
    """The mapped column attributes of a model class (``meta`` for the job's metadata)."""
    return tuple(attribute.key for attribute in sa_inspect(cls).column_attrs)


def row_state(obj: Any) -> dict[str, Any]:
    return {name: copy.deepcopy(getattr(obj, name)) for name in columns(type(obj))}


def clone(obj: Any) -> Any:
    return type(obj)(**row_state(obj))


class FakePublisher:
    """The broker: keeps what it is given, or refuses everything while ``broken``."""

    def __init__(self) -> None:
        self.published: list[Command] = []
        self.broken = False

    def publish(self, commands: list[Command]) -> None:
        if self.broken:
            raise PublishFailed("the fake broker is down")
        self.published.extend(commands)


class FakeStore:
    """The committed state of the fake database, and its clock (``now``)."""

    def __init__(self, now: datetime | None = None) -> None:
        self.now = now or datetime.now(UTC).replace(microsecond=0)
        self.rows: dict[type, dict[str, Any]] = {table: {} for table in TABLES}
        self.lock = threading.RLock()
        self.commits = 0
        self._before_commit: list[Callable[[], None]] = []
        self._failures: list[BaseException] = []

    @property
    def jobs(self) -> dict[str, Job]:
        return self.rows[Job]

    @property
    def attempts(self) -> dict[str, Attempt]:
        return self.rows[Attempt]

    @property
    def tenants(self) -> dict[str, Tenant]:
        return self.rows[Tenant]

    @property
    def keys(self) -> dict[str, ApiKey]:
        return self.rows[ApiKey]

    def advance(self, seconds: float) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now

    def put(self, *objects: Any) -> None:
        """Insert rows directly, as a fixture would, bypassing every service."""
        with self.lock:
            for obj in objects:
                row = clone(obj)
                if isinstance(row, Job) and row.version is None:
                    row.version = 1
                self.rows[type(obj)][obj.id] = row

    def job(self, job_id: str) -> Job:
        """A copy of the committed job row."""
        with self.lock:
            return clone(self.jobs[job_id])

    def attempts_of(self, job_id: str) -> list[Attempt]:
        """Copies of a job's committed attempts, in the order the real repository lists them."""
        with self.lock:
            rows = [a for a in self.attempts.values() if a.job_id == job_id]
            return [clone(a) for a in sorted(rows, key=lambda a: (a.number, a.id))]

    def before_next_commit(self, action: Callable[[], None]) -> None:
        """Run ``action`` (typically another unit of work) just before the next commit checks
        its rows: a concurrent writer that got in between a read and a write."""
        self._before_commit.append(action)

    def fail_next_commits(self, error: BaseException, times: int = 1) -> None:
        self._failures.extend([error] * times)

    def _take_hooks(self) -> list[Callable[[], None]]:
        hooks, self._before_commit = self._before_commit, []
        return hooks

    def _take_failure(self) -> BaseException | None:
        return self._failures.pop(0) if self._failures else None


class FakeUnitOfWork:
    """One transaction over a ``FakeStore``; same interface as ``UnitOfWork``."""

    def __init__(self, store: FakeStore, publisher: FakePublisher) -> None:
        self.store = store
        self.publisher = publisher
        self._reset()

    def _reset(self) -> None:
        self._loaded: dict[tuple[type, str], tuple[Any, dict[str, Any]]] = {}
        self._new: list[Any] = []
        self._writes: list[Callable[[], None]] = []
        self._pending: list[RunJob] = []
        self._now: datetime | None = None

    def __enter__(self) -> FakeUnitOfWork:
        self._reset()
        self.jobs = FakeJobRepository(self)
        self.tenants = FakeTenantRepository(self)
        self.keys = FakeKeyRepository(self)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # Like Session.close(): whatever was not committed is dropped.
        self._new, self._writes, self._pending = [], [], []

    def now(self) -> datetime:
        """The store's clock, fixed for the transaction as the database's ``now()`` is."""
        if self._now is None:
            self._now = self.store.now
        return self._now

    def fix_clock(self, now: datetime) -> None:
        """The store's clock is the only one: nothing to fix."""

    def no_endpoints(self, tenant_id: str) -> None:
        """The fake writes no webhook events: nothing to skip."""

    def add(self, *objects: Any) -> None:
        for obj in objects:
            if type(obj) not in TABLES:
                raise TypeError(f"not a mapped row: {obj!r}")
            self._new.append(obj)

    def publish_after_commit(self, command: RunJob) -> None:
        self._pending.append(command)

    def commit(self) -> None:
        store = self.store
        with store.lock:
            for hook in store._take_hooks():
                hook()
            failure = store._take_failure()
            if failure is not None:
                raise failure
            changed = [
                (key, obj, snapshot)
                for key, (obj, snapshot) in self._loaded.items()
                if row_state(obj) != snapshot
            ]
            self._check_versions(changed)
            self._check_inserts()
            for write in self._writes:
                write()
            for (table, row_id), obj, snapshot in changed:
                if table is Job:
                    obj.version = snapshot["version"] + 1
                store.rows[table][row_id] = clone(obj)
                self._loaded[(table, row_id)] = (obj, row_state(obj))
            for obj in self._new:
                if isinstance(obj, Job) and obj.version is None:
                    obj.version = 1
                store.rows[type(obj)][obj.id] = clone(obj)
                self._loaded[(type(obj), obj.id)] = (obj, row_state(obj))
            store.commits += 1
        self._new, self._writes = [], []
        pending, self._pending = self._pending, []
        if pending:
            self._publish(pending)

    def rollback(self) -> None:
        self._reset()

    # -- helpers used by the repositories -----------------------------------------------------

    def load(self, table: type, row_id: str) -> Any:
        """The working copy of a stored row (one per row per unit of work), or None."""
        key = (table, row_id)
        if key in self._loaded:
            return self._loaded[key][0]
        with self.store.lock:
            row = self.store.rows[table].get(row_id)
            if row is None:
                return None
            obj = clone(row)
        self._loaded[key] = (obj, row_state(obj))
        return obj

    def write_through(self, job_ids: Sequence[str], **values: Any) -> None:
        """A plain UPDATE of jobs that leaves ``version`` alone: the loaded copies see the new
        values at once (as the ORM synchronizes them) and the store gets them on commit."""
        for job_id in job_ids:
            loaded = self._loaded.get((Job, job_id))
            if loaded is not None:
                obj, snapshot = loaded
                for name, value in values.items():
                    setattr(obj, name, value)
                    snapshot[name] = copy.deepcopy(value)

        def write() -> None:
            for job_id in job_ids:
                row = self.store.jobs.get(job_id)
                if row is not None:
                    for name, value in values.items():
                        setattr(row, name, copy.deepcopy(value))

        self._writes.append(write)

    def defer(self, write: Callable[[], None]) -> None:
        self._writes.append(write)

    def _check_versions(self, changed: list[tuple[tuple[type, str], Any, dict[str, Any]]]) -> None:
        for (table, row_id), _obj, snapshot in changed:
            stored = self.store.rows[table].get(row_id)
            if stored is None:
                raise StaleDataError(f"{table.__name__} {row_id} was deleted meanwhile")
            if table is Job and stored.version != snapshot["version"]:
                raise StaleDataError(f"job {row_id} changed meanwhile")

    def _check_inserts(self) -> None:
        seen: set[tuple[type, str]] = set()
        for obj in self._new:
            key = (type(obj), obj.id)
            if key in seen or obj.id in self.store.rows[type(obj)]:
                raise _integrity(f"duplicate id {obj.id}")
            seen.add(key)
        names = {t.name for t in self.store.tenants.values()}
        hashes = {k.key_hash for k in self.store.keys.values()}
        for obj in self._new:
            if isinstance(obj, Tenant):
                if obj.name in names:
                    raise _integrity(f"duplicate tenant name {obj.name}")
                names.add(obj.name)
            if isinstance(obj, ApiKey):
                if obj.key_hash in hashes:
                    raise _integrity("duplicate key hash")
                hashes.add(obj.key_hash)

    def _publish(self, commands: list[RunJob]) -> None:
        # As the real unit of work: a refused publish leaves the rows queued and unpublished,
        # for the scheduler to pick up.
        try:
            self.publisher.publish(commands)
        except PublishFailed:
            with self.store.lock:
                for command in commands:
                    row = self.store.jobs.get(command.job_id)
                    if row is not None:
                        row.published_at = None


def _integrity(message: str) -> IntegrityError:
    return IntegrityError("INSERT", {}, Exception(message))


class FakeJobRepository:
    def __init__(self, uow: FakeUnitOfWork) -> None:
        self._uow = uow

    def _rows(self, keep: Callable[[Job], bool]) -> list[Job]:
        with self._uow.store.lock:
            return [row for row in self._uow.store.jobs.values() if keep(row)]

    def get(self, tenant_id: str, job_id: str) -> Job | None:
        job = self._uow.load(Job, job_id)
        return job if job is not None and job.tenant_id == tenant_id else None

    def get_unscoped(self, job_id: str) -> Job | None:
        return self._uow.load(Job, job_id)

    # The fake store keeps no webhook endpoints and no queue pauses.
    def with_clock(self, job_id: str) -> tuple[Job | None, datetime, bool, bool]:
        return self._uow.load(Job, job_id), self._uow.now(), False, False

    def attempt_with_clock(
        self, job_id: str, attempt_id: str
    ) -> tuple[Job | None, Attempt | None, datetime, bool]:
        job, attempt = self._uow.load(Job, job_id), self._uow.load(Attempt, attempt_id)
        if job is None or attempt is None or attempt.job_id != job_id:
            return None, None, self._uow.now(), False
        return job, attempt, self._uow.now(), False

    def insert(self, jobs: Sequence[Job], wanted_run_at: Sequence[datetime | None]) -> list[Job]:
        now = self._uow.now()
        for job, wanted in zip(jobs, wanted_run_at, strict=True):
            job.created_at = now
            job.run_at = max(wanted or now, now)
            job.published_at = None
            job.version = 1
        self._uow.add(*jobs)
        return list(jobs)

    def read(self, tenant_id: str, job_id: str, rules: Any) -> Job | None:
        job = self.get(tenant_id, job_id)
        return None if job is None else self._explained(job)

    def _explained(self, job: Job) -> Job:
        """Why a queued job waits, as far as the fake knows (no pauses, no keys)."""
        if job.run_at > self._uow.now():
            job.waits_for("backoff" if job.attempts > 0 else "run_at")
        else:
            job.waits_for("capacity")
        return job

    def page(
        self,
        tenant_id: str,
        filters: JobFilter,
        before_id: str | None,
        limit: int,
        rules: Any = None,
    ) -> Sequence[Job]:
        def keep(job: Job) -> bool:
            return (
                job.tenant_id == tenant_id
                and (not filters.status or job.status == filters.status)
                and (not filters.type or job.type == filters.type)
                and (not filters.created_after or job.created_at > filters.created_after)
                and (not filters.created_before or job.created_at < filters.created_before)
                and (not filters.schedule_id or job.schedule_id == filters.schedule_id)
                and (not before_id or job.id < before_id)
            )

        rows = sorted(self._rows(keep), key=lambda job: job.id, reverse=True)[:limit]
        return [self._explained(self._uow.load(Job, row.id)) for row in rows]

    def attempts(self, job_id: str) -> Sequence[Attempt]:
        with self._uow.store.lock:
            rows = [a for a in self._uow.store.attempts.values() if a.job_id == job_id]
        rows.sort(key=lambda a: (a.number, a.id))
        return [self._uow.load(Attempt, row.id) for row in rows]

    def attempt(self, attempt_id: str) -> Attempt | None:
        return self._uow.load(Attempt, attempt_id)

    def lapsed(self, now: datetime, limit: int) -> Sequence[Job]:
        def keep(job: Job) -> bool:
            return (
                job.status == "running"
                and job.lease_expires_at is not None
                and job.lease_expires_at < now
            )

        rows = sorted(self._rows(keep), key=lambda job: job.lease_expires_at)[:limit]
        return [self._uow.load(Job, row.id) for row in rows]

    def mark_published(self, job_ids: list[str], now: datetime) -> None:
        self._uow.write_through(job_ids, published_at=now)

    def mark_unpublished(self, job_ids: list[str]) -> None:
        self._uow.write_through(job_ids, published_at=None)

    def renew_lease(self, job_id: str, attempt_id: str, until: datetime) -> tuple[bool, bool]:
        store = self._uow.store

        def owns(row: Job | None) -> bool:
            return (
                row is not None and row.current_attempt_id == attempt_id and row.status == "running"
            )

        with store.lock:
            row = store.jobs.get(job_id)
            if not owns(row):
                return False, False
            cancel = bool(row.cancel_requested)

        def write() -> None:
            current = store.jobs.get(job_id)
            if owns(current):
                current.lease_expires_at = until

        self._uow.defer(write)
        return True, cancel


class FakeTenantRepository:
    def __init__(self, uow: FakeUnitOfWork) -> None:
        self._uow = uow

    def get(self, tenant_id: str) -> Tenant | None:
        return self._uow.load(Tenant, tenant_id)

    def locked(self, tenant_id: str) -> Tenant | None:
        return self.get(tenant_id)  # one writer at a time: the fake store's lock

    def by_name(self, name: str) -> Tenant | None:
        with self._uow.store.lock:
            found = [t.id for t in self._uow.store.tenants.values() if t.name == name]
        return self._uow.load(Tenant, found[0]) if found else None


class FakeKeyRepository:
    def __init__(self, uow: FakeUnitOfWork) -> None:
        self._uow = uow

    def by_hash(self, key_hash: str) -> ApiKey | None:
        with self._uow.store.lock:
            found = [k.id for k in self._uow.store.keys.values() if k.key_hash == key_hash]
        return self._uow.load(ApiKey, found[0]) if found else None

    def get(self, tenant_id: str, key_id: str) -> ApiKey | None:
        key = self._uow.load(ApiKey, key_id)
        return key if key is not None and key.tenant_id == tenant_id else None

    def page(self, tenant_id: str, before_id: str | None, limit: int) -> list[ApiKey]:
        return self._page(ApiKey, tenant_id, before_id, limit)

    def audit_page(self, tenant_id: str, before_id: str | None, limit: int) -> list[AuditEvent]:
        return self._page(AuditEvent, tenant_id, before_id, limit)

    def touch(self, key_id: str, now: datetime, stale_before: datetime) -> None:
        key = self._uow.load(ApiKey, key_id)
        if key is not None and (key.last_used_at is None or key.last_used_at < stale_before):
            key.last_used_at = now

    def _page(self, table: type, tenant_id: str, before_id: str | None, limit: int) -> list[Any]:
        with self._uow.store.lock:
            ids = sorted(
                (r.id for r in self._uow.store.rows[table].values() if r.tenant_id == tenant_id),
                reverse=True,
            )
        ids = [i for i in ids if before_id is None or i < before_id][:limit]
        return [self._uow.load(table, i) for i in ids]


class FakeWaiter:
    """A ``JobWaiter`` whose waits return at once, recording the call and running ``on_wait``
    (a stand-in for whatever happens to the job while a long-poll waits). ``full`` plays a
    process whose long-poll capacity is taken."""

    def __init__(self, on_wait: Callable[[str], None] | None = None) -> None:
        self.calls: list[tuple[str, float]] = []
        self.watched: list[str] = []
        self.on_wait = on_wait
        self.full = False

    @contextmanager
    def watch(self, job_id: str) -> Iterator[FakeWatch | None]:
        self.watched.append(job_id)
        yield None if self.full else FakeWatch(self, job_id)


class FakeWatch:
    def __init__(self, waiter: FakeWaiter, job_id: str) -> None:
        self._waiter = waiter
        self._job_id = job_id

    def wait(self, timeout: float) -> None:
        self._waiter.calls.append((self._job_id, timeout))
        if self._waiter.on_wait is not None:
            self._waiter.on_wait(self._job_id)


def fake_settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": "sqlite://",
        "broker_url": "memory://",
        "redis_url": None,
        "embedded": True,
    }
    values.update(overrides)
    return Settings(**values)


@dataclass
class FakeWiring:
    """The services wired over one fake store, as ``hopper.bootstrap`` wires the real ones."""

    store: FakeStore = field(default_factory=FakeStore)
    publisher: FakePublisher = field(default_factory=FakePublisher)
    registry: Registry = field(default_factory=build_registry)
    settings: Settings = field(default_factory=fake_settings)
    waiter: FakeWaiter = field(default_factory=FakeWaiter)

    def __post_init__(self) -> None:
        margin = self.settings.hard_limit_margin_seconds
        self.jobs = JobService(self.uow, self.registry, self.waiter, margin)
        self.execution = ExecutionService(self.uow, self.registry, self.settings)
        self.scheduling = SchedulerService(self.uow)
        self.key_cache = KeyCache()
        self.access = AccessService(self.uow, self.key_cache, clock=lambda: self.store.now)

    def uow(self) -> FakeUnitOfWork:
        return FakeUnitOfWork(self.store, self.publisher)
