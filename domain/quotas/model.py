"""The quotas, their defaults, and the usage the database keeps of the two that grow with jobs
(migration 0013: triggers on ``jobs`` keep ``tenant_usage``)."""

from __future__ import annotations

from dataclasses import dataclass, fields

from sqlalchemy import BigInteger, SmallInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from domain.errors import DomainError
from domain.model.base import Base

# What each quota counts, as `hopper tenants set-quota` and the problems name it.
QUOTAS = {
    "unfinished_jobs": "unfinished jobs (queued or running)",
    "payload_bytes": "bytes of stored job payloads",
    "api_keys": "API keys in use (neither revoked nor expired)",
    "webhook_endpoints": "webhook endpoints",
}


@dataclass(frozen=True)
class Quotas:
    unfinished_jobs: int = 100_000
    payload_bytes: int = 1024**3
    api_keys: int = 100
    webhook_endpoints: int = 100

    def with_overrides(self, **overrides: int | None) -> Quotas:
        """These, with a tenant's own ceilings where it has one (None: the default)."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        values.update({name: value for name, value in overrides.items() if value is not None})
        return Quotas(**values)


class QuotaExceeded(DomainError):
    slug = "quota-exceeded"
    title = "Quota exceeded"

    def __init__(self, quota: str, ceiling: int, detail: str | None = None) -> None:
        super().__init__(
            detail or f"The tenant's quota {quota} is reached: at most {ceiling:,} {QUOTAS[quota]}."
        )
        self.quota = quota
        self.ceiling = ceiling


class TenantUsage(Base):
    """One of a tenant's rows of usage; the tenant's usage is their sum."""

    __tablename__ = "tenant_usage"

    tenant_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    slot: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    unfinished_jobs: Mapped[int] = mapped_column(BigInteger)
    payload_bytes: Mapped[int] = mapped_column(BigInteger)
