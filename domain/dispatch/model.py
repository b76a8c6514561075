"""What fair dispatch keeps between passes (migration 0011): each queue's virtual time, whose row
is also the lock that lets one dispatcher at a time fill the queue's window, and each tenant's
pass in each queue (``domain.dispatch.fairness``); and the limits of the tenants' concurrency
and rate keys, with each rate key's next start (migration 0012, ``domain.dispatch.keys``)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from domain.model.base import Base


class DispatchClock(Base):
    __tablename__ = "dispatch_clocks"

    queue: Mapped[str] = mapped_column(String(100), primary_key=True)
    clock: Mapped[float] = mapped_column(Float, default=0.0)


class DispatchShare(Base):
    __tablename__ = "dispatch_shares"

    queue: Mapped[str] = mapped_column(String(100), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    passed: Mapped[float] = mapped_column(Float, default=0.0)


class ConcurrencyLimit(Base):
    """A tenant's limit for one of its concurrency keys (``PUT /v1/concurrency-limits/{key}``);
    without one, the job type's ``concurrency_limit`` holds."""

    __tablename__ = "concurrency_limits"

    tenant_id: Mapped[str] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    limit: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime]


class RateLimit(Base):
    """A tenant's rate for one of its rate keys (``PUT /v1/rate-limits/{key}``); without one,
    the job type's ``rate_limit`` holds."""

    __tablename__ = "rate_limits"

    tenant_id: Mapped[str] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    rate: Mapped[str] = mapped_column(String(32))  # "10/second", as given
    updated_at: Mapped[datetime]


class RateKeyState(Base):
    """When a rate key may next start a job (GCRA's theoretical arrival time)."""

    __tablename__ = "rate_key_states"

    tenant_id: Mapped[str] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    next_at: Mapped[datetime]
