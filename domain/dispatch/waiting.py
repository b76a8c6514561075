"""Why a queued job waits, as one SQL expression over the selected job: the job's
``waiting_for``, and what ``GET /v1/queues`` and ``hopper_jobs_waiting{queue,reason}`` count.

In order: ``backoff`` (not yet due: a failed attempt's retry), ``run_at`` (not yet due: its
submitter asked for later), ``paused`` (its queue is paused for its tenant), ``concurrency``
(its concurrency key has no place left), ``rate`` (its rate key is resting, or has a job in
flight that starts first), ``capacity`` (nothing holds it: it waits for a place in its queue's
window, or for a worker).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, case, exists, func, null, or_, select
from sqlalchemy.orm import aliased

from domain.dispatch.model import ConcurrencyLimit, RateKeyState, RateLimit
from domain.job_types import Registry
from domain.model import Job
from domain.queue_control.model import job_paused

When = datetime | ColumnElement[Any]  # a time, or the database's clock as SQL


@dataclass(frozen=True)
class WaitingRules:
    """What the reason needs of the job types: their default concurrency limits and rates."""

    type_limits: Mapping[str, int] = field(default_factory=dict)
    rated_types: tuple[str, ...] = ()

    @classmethod
    def of(cls, registry: Registry) -> WaitingRules:
        return cls(
            {t.name: t.concurrency_limit for t in registry if t.concurrency_limit is not None},
            tuple(t.name for t in registry if t.rate_limit is not None),
        )

    def reason(self, now: When) -> ColumnElement[str]:
        return waiting_reason(now, self.type_limits, self.rated_types)


def waiting_reason(
    now: When, type_limits: Mapping[str, int], rated_types: Sequence[str]
) -> ColumnElement[str]:
    """``type_limits``: the job types' default concurrency limits; ``rated_types``: the types
    with a default rate (both from the registry)."""
    return case(
        (and_(Job.run_at > now, Job.attempts > 0), "backoff"),
        (Job.run_at > now, "run_at"),
        (job_paused(), "paused"),
        (_no_place(type_limits), "concurrency"),
        (_rate_holds(now, rated_types), "rate"),
        else_="capacity",
    )


def _no_place(type_limits: Mapping[str, int]) -> ColumnElement[bool]:
    other = aliased(Job)
    held = (
        select(func.count())
        .where(
            other.tenant_id == Job.tenant_id,
            other.concurrency_key == Job.concurrency_key,
            other.status.in_(("queued", "running")),
            or_(other.status == "running", other.published_at.is_not(None)),
        )
        .scalar_subquery()
    )
    tenants = (
        select(ConcurrencyLimit.limit)
        .where(
            ConcurrencyLimit.tenant_id == Job.tenant_id, ConcurrencyLimit.key == Job.concurrency_key
        )
        .scalar_subquery()
    )
    types = case(type_limits, value=Job.type, else_=null()) if type_limits else null()
    return and_(
        Job.concurrency_key.is_not(None),
        Job.published_at.is_(None),
        held >= func.coalesce(tenants, types),
    )


def _rate_holds(now: When, rated_types: Sequence[str]) -> ColumnElement[bool]:
    other = aliased(Job)
    has_rate = exists().where(RateLimit.tenant_id == Job.tenant_id, RateLimit.key == Job.rate_key)
    if rated_types:
        has_rate = or_(has_rate, Job.type.in_(rated_types))
    resting = exists().where(
        RateKeyState.tenant_id == Job.tenant_id,
        RateKeyState.key == Job.rate_key,
        RateKeyState.next_at > now,
    )
    ahead = exists().where(
        other.tenant_id == Job.tenant_id,
        other.rate_key == Job.rate_key,
        other.status == "queued",
        other.published_at.is_not(None),
    )
    return and_(
        Job.rate_key.is_not(None),
        Job.published_at.is_(None),
        has_rate,
        or_(resting, ahead),
    )
