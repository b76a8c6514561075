"""What one dispatch pass knows of the keys (``domain.dispatch.keys``): which keys hold jobs
back from the query, and the ``Gate`` that admits the jobs the query found."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from domain.dispatch.keys import Gate, Key, KeyedJob
from domain.dispatch.repository import HeldBack
from domain.job_types import Registry
from domain.unit_of_work import UnitOfWork


@dataclass
class KeyDefaults:
    """The job types' default limits and rates."""

    registry: Registry

    def limit(self, job_type: str) -> int | None:
        return self.registry.get(job_type).concurrency_limit if job_type in self.registry else None

    def rate(self, job_type: str) -> str | None:
        return self.registry.get(job_type).rate_limit if job_type in self.registry else None

    def view(self, uow: UnitOfWork, tenants: Sequence[str], now: datetime) -> KeyView:
        held, types = uow.key_limits.held(tenants)
        flying = uow.key_limits.rates_in_flight(tenants)
        view = KeyView(self, held, uow.key_limits.concurrency_limits(held))
        view.rates = uow.key_limits.rates(key for key, _ in flying)
        resting = uow.key_limits.rates_resting(tenants, now)
        view.waiting = set(resting)
        if resting:
            view.rests_for = (min(resting.values()) - now).total_seconds()
        view.waiting |= {key for key, job_type in flying if view.rated(key, job_type)}
        full = {key for key, count in held.items() if view.full(key, types[key], count)}
        for tenant, key in full:
            view.held_back.setdefault(tenant, HeldBack()).concurrency.append(key)
        for tenant, key in view.waiting:
            view.held_back.setdefault(tenant, HeldBack()).rate.append(key)
        return view


@dataclass
class KeyView:
    defaults: KeyDefaults
    held: Counter[Key]
    limits: dict[Key, int]
    rates: dict[Key, str] = field(default_factory=dict)
    waiting: set[Key] = field(default_factory=set)
    held_back: dict[str, HeldBack] = field(default_factory=dict)
    rests_for: float | None = None  # seconds until the soonest resting rate key may start one

    def limit(self, key: Key, job_type: str) -> int | None:
        return self.limits.get(key) or self.defaults.limit(job_type)

    def full(self, key: Key, job_type: str, count: int) -> bool:
        limit = self.limit(key, job_type)
        return limit is not None and count >= limit

    def rated(self, key: Key, job_type: str) -> bool:
        return key in self.rates or self.defaults.rate(job_type) is not None

    def gate(self, uow: UnitOfWork, jobs: Sequence[KeyedJob]) -> Gate:
        """The gate for ``jobs``, once the limits and rates of their keys are known."""
        concurrency = {(j.tenant_id, j.concurrency_key) for j in jobs if j.concurrency_key}
        self.limits |= uow.key_limits.concurrency_limits(concurrency - set(self.limits))
        rate = {(j.tenant_id, j.rate_key) for j in jobs if j.rate_key}
        self.rates |= uow.key_limits.rates(rate - set(self.rates))
        return Gate(
            held=self.held,
            limits=lambda job: self.limit((job.tenant_id, job.concurrency_key or ""), job.type),
            rated=lambda job: self.rated((job.tenant_id, job.rate_key or ""), job.type),
            waiting=set(self.waiting),
        )
