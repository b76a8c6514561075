"""Tenants and their API keys. Keys are stored only as hashes."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from domain.model.base import Base


class Role(enum.StrEnum):
    READER = "reader"
    SUBMITTER = "submitter"
    ADMIN = "admin"

    def allows(self, required: Role) -> bool:
        order = (Role.READER, Role.SUBMITTER, Role.ADMIN)
        return order.index(self) >= order.index(required)


class Tenant(Base):
    __tablename__ = "tenants"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    created_at: Mapped[datetime]
    # Its share of each queue against the other tenants' (``domain.dispatch.fairness``).
    weight: Mapped[int] = mapped_column(Integer, default=1)
    # Its own ceilings (domain.quotas); None: the configured default.
    quota_unfinished_jobs: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    quota_payload_bytes: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    quota_api_keys: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    quota_webhook_endpoints: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16))
    prefix: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]

    def usable_at(self, now: datetime) -> bool:
        if self.revoked_at is not None:
            return False
        return self.expires_at is None or self.expires_at > now
