"""The queries of concurrency and rate keys (``domain.dispatch.keys``): the places each key holds,
the tenants' limits and rates, each rate key's next start, and the key locks a claim takes."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import func, or_, select, text, tuple_
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from domain.dispatch.keys import Key
from domain.dispatch.model import ConcurrencyLimit, RateKeyState, RateLimit
from domain.model import Job

# The same words as ix_jobs_concurrency_held's predicate: running, or dispatched.
_HOLDS_A_PLACE = (
    Job.concurrency_key.is_not(None),
    Job.status.in_(("queued", "running")),
    or_(Job.status == "running", Job.published_at.is_not(None)),
)


class KeyLimitRepository:
    def __init__(self, session: Session) -> None:
        self.session = session
        self._postgres = session.get_bind().dialect.name == "postgresql"

    # -- what the dispatcher reads ----------------------------------------------------------

    def held(self, tenants: Sequence[str]) -> tuple[Counter[Key], dict[Key, str]]:
        """Per concurrency key of these tenants: the places taken, and a type of the jobs
        that take them (its default limit holds when the tenant set none)."""
        rows = self.session.execute(
            select(Job.tenant_id, Job.concurrency_key, Job.type, func.count())
            .where(*_HOLDS_A_PLACE, Job.tenant_id.in_(tenants))
            .group_by(Job.tenant_id, Job.concurrency_key, Job.type)
        )
        held: Counter[Key] = Counter()
        types: dict[Key, str] = {}
        for tenant, key, job_type, count in rows:
            held[(tenant, key)] += count
            types[(tenant, key)] = job_type
        return held, types

    def rates_in_flight(self, tenants: Sequence[str]) -> list[tuple[Key, str]]:
        """Rate keys of these tenants with a job dispatched and not yet claimed, with its type
        (ix_jobs_rate_in_flight)."""
        rows = self.session.execute(
            select(Job.tenant_id, Job.rate_key, Job.type)
            .where(
                Job.rate_key.is_not(None),
                Job.status == "queued",
                Job.published_at.is_not(None),
                Job.tenant_id.in_(tenants),
            )
            .distinct()
        )
        return [((tenant, key), job_type) for tenant, key, job_type in rows]

    def rates_resting(self, tenants: Sequence[str], now: datetime) -> dict[Key, datetime]:
        """Rate keys of these tenants that may not start a job before a later time, and when
        they may."""
        rows = self.session.execute(
            select(RateKeyState.tenant_id, RateKeyState.key, RateKeyState.next_at).where(
                RateKeyState.tenant_id.in_(tenants), RateKeyState.next_at > now
            )
        )
        return {(tenant, key): at for tenant, key, at in rows}

    def concurrency_limits(self, keys: Iterable[Key]) -> dict[Key, int]:
        wanted = sorted(set(keys))
        if not wanted:
            return {}
        columns = tuple_(ConcurrencyLimit.tenant_id, ConcurrencyLimit.key)
        rows = self.session.execute(
            select(ConcurrencyLimit.tenant_id, ConcurrencyLimit.key, ConcurrencyLimit.limit).where(
                columns.in_(wanted)
            )
        )
        return {(tenant, key): limit for tenant, key, limit in rows}

    def rates(self, keys: Iterable[Key]) -> dict[Key, str]:
        wanted = sorted(set(keys))
        if not wanted:
            return {}
        rows = self.session.execute(
            select(RateLimit.tenant_id, RateLimit.key, RateLimit.rate).where(
                tuple_(RateLimit.tenant_id, RateLimit.key).in_(wanted)
            )
        )
        return {(tenant, key): rate for tenant, key, rate in rows}

    # -- what a claim checks, under the key's lock ------------------------------------------

    def lock(self, kind: str, key: Key) -> None:
        """Hold ``key`` until the transaction ends (PostgreSQL; SQLite has one writer at a
        time already)."""
        if self._postgres:
            self.session.execute(
                text("SELECT pg_advisory_xact_lock(hashtext(:tenant), hashtext(:key))"),
                {"tenant": key[0], "key": f"{kind}:{key[1]}"},
            )

    def running(self, key: Key) -> int:
        return int(
            self.session.scalar(
                select(func.count()).where(
                    *_HOLDS_A_PLACE,
                    Job.status == "running",
                    Job.tenant_id == key[0],
                    Job.concurrency_key == key[1],
                )
            )
            or 0
        )

    def next_start(self, key: Key) -> datetime | None:
        return self.session.scalar(
            select(RateKeyState.next_at).where(
                RateKeyState.tenant_id == key[0], RateKeyState.key == key[1]
            )
        )

    def set_next_start(self, key: Key, at: datetime) -> None:
        upsert = (pg_insert if self._postgres else sqlite_insert)(RateKeyState)
        statement = upsert.values(tenant_id=key[0], key=key[1], next_at=at)
        self.session.execute(
            statement.on_conflict_do_update(
                index_elements=["tenant_id", "key"], set_={"next_at": statement.excluded.next_at}
            )
        )
