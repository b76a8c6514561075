"""A schedule (a job body fired on a cron or an interval) and the slots it has handled
(migration 0010)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from domain.model.base import Base, Document
from domain.schedules.clock import Cadence, next_after

OVERLAP = ("allow", "skip")
MAX_SCHEDULES = 1_000  # a tenant's
MAX_INTERVAL_SECONDS = 31_536_000  # a year
CADENCE_FIELDS = ("cron", "interval_seconds", "timezone")
FIRED, SKIPPED = "fired", "skipped"


class Schedule(Base):
    __tablename__ = "schedules"
    __table_args__ = (UniqueConstraint("tenant_id", "name"),)  # a name is unique in its tenant

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    cron: Mapped[str | None] = mapped_column(String(200), nullable=True)
    interval_seconds: Mapped[int | None] = mapped_column(Integer, nullable=True)
    timezone: Mapped[str] = mapped_column(String(64))
    # Where an interval's slots start from: the creation instant, or the last change of cadence.
    anchor: Mapped[datetime]
    # The body of POST /v1/jobs less run_at, its secret fields redacted (sealed_fields) ...
    job: Mapped[dict[str, Any]] = mapped_column(Document)
    sealed: Mapped[str | None] = mapped_column(Text, nullable=True)  # ... and their values
    enabled: Mapped[bool] = mapped_column(Boolean)
    overlap: Mapped[str] = mapped_column(String(8))
    catch_up: Mapped[str] = mapped_column(String(8))
    next_run_at: Mapped[datetime | None]  # the first slot not yet handled; null while disabled
    last_run_at: Mapped[datetime | None]  # the slot of the last fired job
    last_job_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    def cadence(self) -> Cadence:
        return Cadence(self.cron, self.interval_seconds, self.timezone, self.anchor)

    def start(self, now: datetime) -> None:
        """Anchored at ``now`` (to the second, so an interval's slots fall on whole seconds),
        and due at its first slot after it if enabled."""
        self.anchor = now.replace(microsecond=0)
        self.next_run_at = next_after(self.cadence(), now) if self.enabled else None

    def change(self, fields: Mapping[str, Any], now: datetime) -> None:
        """Apply a change. A new cadence re-anchors at ``now``; enabling again is due from
        ``now`` on (the disabled time is not caught up); disabling leaves nothing due."""
        before = (self.cron, self.interval_seconds, self.timezone, self.enabled)
        if fields.get("cron") is not None:
            self.cron, self.interval_seconds = fields["cron"], None
        if fields.get("interval_seconds") is not None:
            self.cron, self.interval_seconds = None, fields["interval_seconds"]
        for name in ("name", "timezone", "enabled", "overlap", "catch_up", "job", "sealed"):
            if name in fields:
                setattr(self, name, fields[name])
        if (self.cron, self.interval_seconds, self.timezone) != before[:3]:
            self.start(now)
        elif not self.enabled:
            self.next_run_at = None
        elif not before[3]:
            self.next_run_at = next_after(self.cadence(), now)
        self.updated_at = now


class ScheduleRun(Base):
    """A slot that a scheduler handled: its primary key is what makes each slot fire once,
    however many schedulers run."""

    __tablename__ = "schedule_runs"

    schedule_id: Mapped[str] = mapped_column(
        ForeignKey("schedules.id", ondelete="CASCADE"), primary_key=True
    )
    slot: Mapped[datetime] = mapped_column(primary_key=True)
    job_id: Mapped[str | None] = mapped_column(String(40), nullable=True)  # null: skipped
    outcome: Mapped[str] = mapped_column(String(16))
