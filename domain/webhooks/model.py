"""Webhook endpoints, events and deliveries, and the rules of a delivery's life."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Boolean, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from domain.model.base import Base, Document

EVENT_TYPES = ("job.started", "job.succeeded", "job.failed", "job.canceled", "webhook.test")
FAILING_DAYS_BEFORE_DISABLE = 5


def secrets_in_use(
    current: str, previous: str | None, previous_until: datetime | None, now: datetime
) -> list[str]:
    """Ciphertexts of the secrets that sign now: the current one, and the previous one during
    the overlap after a rotation."""
    if previous and previous_until and now < previous_until:
        return [current, previous]
    return [current]


class Endpoint(Base):
    __tablename__ = "webhook_endpoints"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    url: Mapped[str] = mapped_column(String(2048))
    description: Mapped[str] = mapped_column(String(500), default="")
    event_types: Mapped[list[str] | None] = mapped_column(Document, nullable=True)
    job_types: Mapped[list[str] | None] = mapped_column(Document, nullable=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    disabled_reason: Mapped[str | None] = mapped_column(String(500), nullable=True)
    secret_ciphertext: Mapped[str] = mapped_column(Text)
    previous_secret_ciphertext: Mapped[str | None] = mapped_column(Text, nullable=True)
    previous_secret_until: Mapped[datetime | None]
    failing_since: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    def wants(self, event_type: str, job_type: str | None) -> bool:
        if not self.enabled:
            return False
        if self.event_types is not None and event_type not in self.event_types:
            return False
        return job_type is None or self.job_types is None or job_type in self.job_types

    def rotate(self, new_ciphertext: str, now: datetime, overlap: timedelta) -> None:
        """Keep the old secret signing beside the new one for ``overlap``."""
        self.previous_secret_ciphertext = self.secret_ciphertext
        self.previous_secret_until = now + overlap
        self.secret_ciphertext = new_ciphertext
        self.updated_at = now

    def secrets_in_use(self, now: datetime) -> list[str]:
        return secrets_in_use(
            self.secret_ciphertext,
            self.previous_secret_ciphertext,
            self.previous_secret_until,
            now,
        )

    def delivered(self) -> None:
        self.failing_since = None

    def failed_delivery(self, now: datetime) -> None:
        """An endpoint whose deliveries have all failed for five days is disabled."""
        if self.failing_since is None:
            self.failing_since = now
        elif now - self.failing_since >= timedelta(days=FAILING_DAYS_BEFORE_DISABLE):
            self.disable(f"deliveries have failed for {FAILING_DAYS_BEFORE_DISABLE} days", now)

    def disable(self, reason: str, now: datetime) -> None:
        self.enabled = False
        self.disabled_reason = reason
        self.updated_at = now


class Event(Base):
    """An event, its body fixed when the transition happened: identical on every attempt."""

    __tablename__ = "webhook_events"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    type: Mapped[str] = mapped_column(String(40))
    job_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    body: Mapped[str] = mapped_column(Text)
    request_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    created_at: Mapped[datetime]


class DeliveryAttempt(Base):
    __tablename__ = "webhook_delivery_attempts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    delivery_id: Mapped[str] = mapped_column(
        ForeignKey("webhook_deliveries.id", ondelete="CASCADE")
    )
    at: Mapped[datetime]
    status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    duration_ms: Mapped[int] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(String(1000), nullable=True)
    response_excerpt: Mapped[str] = mapped_column(Text, default="")


class Delivery(Base):
    __tablename__ = "webhook_deliveries"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    endpoint_id: Mapped[str] = mapped_column(ForeignKey("webhook_endpoints.id", ondelete="CASCADE"))
    event_id: Mapped[str] = mapped_column(ForeignKey("webhook_events.id", ondelete="CASCADE"))
    event_type: Mapped[str] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    schedule_step: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None]
    in_flight_until: Mapped[datetime | None]
    claim_token: Mapped[str | None] = mapped_column(String(40), nullable=True)
    published_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__ = {"version_id_col": version}

    @property
    def pending(self) -> bool:
        return self.status == "pending"

    def take(self, token: str, now: datetime, hold: timedelta) -> None:
        self.claim_token = token
        self.in_flight_until = now + hold
        self.updated_at = now

    def succeeded(self, now: datetime) -> None:
        self._end("succeeded", now)

    def failed(self, now: datetime) -> None:
        self._end("failed", now)

    def retry_at(self, when: datetime, now: datetime) -> None:
        self.schedule_step += 1
        self.next_attempt_at = when
        self.published_at = None
        self._release(now)

    def defer(self, when: datetime, now: datetime) -> None:
        """Not now (its endpoint has enough in flight): the scheduler offers it again."""
        self.next_attempt_at = when
        self.published_at = None
        self.updated_at = now

    def redeliver(self, now: datetime, final_step: int) -> None:
        """One more attempt, now; if it fails the delivery is failed again."""
        self.status = "pending"
        self.schedule_step = final_step
        self.next_attempt_at = now
        self.published_at = now
        self._release(now)

    def _end(self, status: str, now: datetime) -> None:
        self.status = status
        self.next_attempt_at = None
        self._release(now)

    def _release(self, now: datetime) -> None:
        self.in_flight_until = None
        self.claim_token = None
        self.updated_at = now
