"""What fair dispatch keeps between passes (migration 0011): each queue's virtual time, whose row
is also the lock that lets one dispatcher at a time fill the queue's window, and each tenant's
pass in each queue (``domain.dispatch.fairness``)."""

from __future__ import annotations

from sqlalchemy import Float, ForeignKey, String
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
