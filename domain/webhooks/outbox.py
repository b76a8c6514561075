"""The outbox: a job transition writes its events and their deliveries in its own transaction,
so an event exists if and only if the transition happened, even if the process dies right
after. Events are written for transitions that some enabled endpoint subscribes to."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from domain.ids import new_id
from domain.model import Job
from domain.representation import job_body, rfc3339
from domain.webhooks.model import Delivery, Endpoint, Event


def event_body(event_type: str, now: datetime, data: dict[str, Any]) -> str:
    """The exact bytes every attempt sends: fixed here, once."""
    return json.dumps(
        {"type": event_type, "timestamp": rfc3339(now), "data": data},
        ensure_ascii=False,
        separators=(",", ":"),
    )


def write_job_events(
    session: Session, job: Job, event_types: list[str], now: datetime
) -> list[str]:
    """Write the events and deliveries of ``job``'s transitions; returns the new delivery ids."""
    endpoints = enabled_endpoints(session, job.tenant_id)
    delivery_ids: list[str] = []
    for event_type in event_types:
        targets = [e for e in endpoints if e.wants(event_type, job.type)]
        if targets:
            event = new_event(job.tenant_id, event_type, job_body(job), now, job.id, job.request_id)
            delivery_ids += add_deliveries(session, event, targets, now)
    return delivery_ids


def enabled_endpoints(session: Session, tenant_id: str) -> list[Endpoint]:
    """The tenant's enabled endpoints, each held with `FOR KEY SHARE` until the transaction
    ends: the lock the foreign key of a new delivery takes anyway, taken at the read instead of
    the insert, so that an endpoint deleted meanwhile waits for this transaction (and its
    cascade then removes the new deliveries) rather than failing it with a foreign-key
    violation. SQLite, which has one writer at a time, ignores the clause."""
    query = (
        select(Endpoint)
        .where(Endpoint.tenant_id == tenant_id, Endpoint.enabled.is_(True))
        .with_for_update(read=True, key_share=True)
    )
    return list(session.scalars(query))


def new_event(
    tenant_id: str,
    event_type: str,
    data: dict[str, Any],
    now: datetime,
    job_id: str | None = None,
    request_id: str | None = None,
) -> Event:
    return Event(
        id=new_id("msg"),
        tenant_id=tenant_id,
        type=event_type,
        job_id=job_id,
        body=event_body(event_type, now, data),
        request_id=request_id,
        created_at=now,
    )


def add_deliveries(
    session: Session, event: Event, endpoints: list[Endpoint], now: datetime
) -> list[str]:
    session.add(event)
    session.flush()  # the event row first: deliveries refer to it, and no relationship says so
    deliveries = [
        Delivery(
            id=new_id("dlv"),
            tenant_id=event.tenant_id,
            endpoint_id=endpoint.id,
            event_id=event.id,
            event_type=event.type,
            status="pending",
            attempts=0,
            schedule_step=0,
            next_attempt_at=now,
            published_at=now,
            created_at=now,
            updated_at=now,
        )
        for endpoint in endpoints
    ]
    session.add_all(deliveries)
    return [d.id for d in deliveries]
