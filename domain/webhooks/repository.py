"""Queries over endpoints, events and deliveries. Client-reachable ones are tenant-scoped."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.orm import Session

from domain.webhooks.model import Delivery, DeliveryAttempt, Endpoint, Event


class WebhookRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def endpoint(self, tenant_id: str, endpoint_id: str) -> Endpoint | None:
        return self.session.scalars(
            select(Endpoint).where(Endpoint.id == endpoint_id, Endpoint.tenant_id == tenant_id)
        ).first()

    def endpoint_page(
        self, tenant_id: str, before_id: str | None, limit: int
    ) -> Sequence[Endpoint]:
        query = select(Endpoint).where(Endpoint.tenant_id == tenant_id)
        if before_id:
            query = query.where(Endpoint.id < before_id)
        return self.session.scalars(query.order_by(Endpoint.id.desc()).limit(limit)).all()

    def delivery(self, endpoint_id: str, delivery_id: str) -> Delivery | None:
        return self.session.scalars(
            select(Delivery).where(Delivery.id == delivery_id, Delivery.endpoint_id == endpoint_id)
        ).first()

    def delivery_page(
        self, endpoint_id: str, before_id: str | None, limit: int
    ) -> Sequence[Delivery]:
        query = select(Delivery).where(Delivery.endpoint_id == endpoint_id)
        if before_id:
            query = query.where(Delivery.id < before_id)
        return self.session.scalars(query.order_by(Delivery.id.desc()).limit(limit)).all()

    def attempt_logs(self, delivery_ids: Sequence[str]) -> dict[str, list[DeliveryAttempt]]:
        logs: dict[str, list[DeliveryAttempt]] = {d: [] for d in delivery_ids}
        query = (
            select(DeliveryAttempt)
            .where(DeliveryAttempt.delivery_id.in_(list(delivery_ids)))
            .order_by(DeliveryAttempt.delivery_id, DeliveryAttempt.id)
        )
        for attempt in self.session.scalars(query):
            logs[attempt.delivery_id].append(attempt)
        return logs

    # -- for the delivery workers and the scheduler, across tenants ---------------------------

    def delivery_unscoped(self, delivery_id: str) -> Delivery | None:
        return self.session.get(Delivery, delivery_id, populate_existing=True)

    def event(self, event_id: str) -> Event | None:
        return self.session.get(Event, event_id)

    def locked_endpoint(self, endpoint_id: str) -> Endpoint | None:
        """Serialises claims per endpoint (on PostgreSQL), so its in-flight bound holds."""
        query = select(Endpoint).where(Endpoint.id == endpoint_id).with_for_update()
        return self.session.scalars(query.execution_options(populate_existing=True)).first()

    def in_flight(self, endpoint_id: str, now: datetime) -> int:
        query = select(func.count()).where(
            Delivery.endpoint_id == endpoint_id,
            Delivery.status == "pending",
            Delivery.in_flight_until > now,
        )
        return int(self.session.scalar(query) or 0)

    def due(self, now: datetime, stale_before: datetime, limit: int) -> Sequence[Delivery]:
        """Pending, due, not in flight, and not published since ``stale_before``."""
        query = (
            select(Delivery)
            .where(
                Delivery.status == "pending",
                Delivery.next_attempt_at <= now,
                or_(Delivery.in_flight_until.is_(None), Delivery.in_flight_until < now),
                or_(Delivery.published_at.is_(None), Delivery.published_at < stale_before),
            )
            .order_by(Delivery.next_attempt_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return self.session.scalars(query).all()

    def mark_published(self, delivery_ids: list[str], now: datetime | None) -> None:
        self.session.execute(
            update(Delivery).where(Delivery.id.in_(delivery_ids)).values(published_at=now)
        )

    def purge_events(self, before: datetime, limit: int) -> int:
        """Delete up to ``limit`` events older than ``before``; deliveries go with them."""
        oldest = (
            select(Event.id)
            .where(Event.created_at < before)
            .order_by(Event.created_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        ids = list(self.session.scalars(oldest))
        if ids:
            self.session.execute(delete(Event).where(Event.id.in_(ids)))
        return len(ids)
