"""Checking the quotas where work comes in, and setting a tenant's own (an operator's command).

The jobs' two quotas are read, with the tenant's own ceilings, in one statement before a
submission's insert; concurrent submissions of one tenant may together pass a ceiling by their
own jobs, never by more. Keys and endpoints are counted under the tenant's row lock, so that
those ceilings hold exactly."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import func, or_, select

from domain import audit
from domain.errors import FieldError, NotFound, ValidationFailed
from domain.model import ApiKey, Job, JobStatus, Tenant
from domain.quotas.model import QUOTAS, QuotaExceeded, Quotas, TenantUsage
from domain.unit_of_work import UnitOfWork
from domain.webhooks.model import Endpoint

MAX_QUOTA = 10**15


class QuotaCheck:
    def __init__(self, defaults: Quotas) -> None:
        self.defaults = defaults

    def jobs(self, uow: UnitOfWork, tenant_id: str, payloads: Sequence[Any]) -> None:
        """Refuse the submission of jobs with ``payloads`` if it passes a ceiling."""
        row = uow.session.execute(
            select(
                Tenant.quota_unfinished_jobs, Tenant.quota_payload_bytes, *_usage(uow, tenant_id)
            ).where(Tenant.id == tenant_id)
        ).one()
        quotas = self.defaults.with_overrides(unfinished_jobs=row[0], payload_bytes=row[1])
        if row[2] + len(payloads) > quotas.unfinished_jobs:
            raise QuotaExceeded("unfinished_jobs", quotas.unfinished_jobs)
        added = sum(len(json.dumps(p, ensure_ascii=False).encode()) for p in payloads)
        if row[3] + added > quotas.payload_bytes:
            raise QuotaExceeded("payload_bytes", quotas.payload_bytes)

    def api_keys(self, uow: UnitOfWork, tenant: Tenant) -> None:
        now = uow.now()
        used = uow.session.scalar(
            select(func.count()).where(
                ApiKey.tenant_id == tenant.id,
                ApiKey.revoked_at.is_(None),
                or_(ApiKey.expires_at.is_(None), ApiKey.expires_at > now),
            )
        )
        ceiling = self._quotas(tenant).api_keys
        if (used or 0) >= ceiling:
            raise QuotaExceeded("api_keys", ceiling)

    def webhook_endpoints(self, uow: UnitOfWork, tenant: Tenant) -> None:
        used = uow.session.scalar(select(func.count()).where(Endpoint.tenant_id == tenant.id))
        ceiling = self._quotas(tenant).webhook_endpoints
        if (used or 0) >= ceiling:
            raise QuotaExceeded("webhook_endpoints", ceiling)

    def _quotas(self, tenant: Tenant) -> Quotas:
        return self.defaults.with_overrides(
            **{name: getattr(tenant, f"quota_{name}") for name in QUOTAS}
        )


def _usage(uow: UnitOfWork, tenant_id: str) -> tuple[Any, Any]:
    """The tenant's unfinished jobs and payload bytes, as two scalar subqueries: summed from
    ``tenant_usage`` on PostgreSQL, counted from ``jobs`` where no trigger keeps them."""
    if uow.session.get_bind().dialect.name == "postgresql":
        mine = TenantUsage.tenant_id == tenant_id
        return (
            select(func.coalesce(func.sum(TenantUsage.unfinished_jobs), 0))
            .where(mine)
            .scalar_subquery(),
            select(func.coalesce(func.sum(TenantUsage.payload_bytes), 0))
            .where(mine)
            .scalar_subquery(),
        )
    unfinished = Job.status.in_((JobStatus.QUEUED, JobStatus.RUNNING))
    return (
        select(func.count()).where(Job.tenant_id == tenant_id, unfinished).scalar_subquery(),
        select(func.coalesce(func.sum(func.length(func.json(Job.payload))), 0))
        .where(Job.tenant_id == tenant_id)
        .scalar_subquery(),
    )


class QuotaService:
    """``hopper tenants set-quota``: a tenant's own ceilings, audited in its log."""

    def __init__(self, uow: Callable[[], UnitOfWork], defaults: Quotas) -> None:
        self._uow = uow
        self._defaults = defaults

    def set(self, tenant_id: str, ceilings: dict[str, int | None]) -> Quotas:
        """``None`` for a quota: back to the default. Returns the tenant's quotas now."""
        for name, value in ceilings.items():
            if name not in QUOTAS:
                raise ValidationFailed([FieldError(name, "No such quota.")])
            if value is not None and not 0 <= value <= MAX_QUOTA:
                raise ValidationFailed([FieldError(name, f"A quota is 0 to {MAX_QUOTA}.")])
        with self._uow() as uow:
            tenant = uow.session.get(Tenant, tenant_id, with_for_update=True)
            if tenant is None:
                raise NotFound(f"no tenant {tenant_id!r}")
            for name, value in ceilings.items():
                setattr(tenant, f"quota_{name}", value)
            audit.record(uow, tenant.id, "tenant.set_quota", "tenant", tenant.id, **ceilings)
            uow.commit()
            return QuotaCheck(self._defaults)._quotas(tenant)
