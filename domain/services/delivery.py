"""Delivering a webhook, as a delivery worker sees it: claim an attempt (signed now), then record
what the subscriber answered and decide what comes next."""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog
from sqlalchemy.orm.exc import StaleDataError

from domain.secrets import SecretBox
from domain.unit_of_work import UnitOfWork
from domain.webhooks.model import Delivery, DeliveryAttempt, Endpoint
from domain.webhooks.signing import signature_header

log = structlog.get_logger(__name__)

MAX_IN_FLIGHT_PER_ENDPOINT = 4  # so one slow endpoint cannot hold every delivery worker
DEFER_SECONDS = 1.0
MAX_RETRY_AFTER = timedelta(days=1)
_RACE_RETRIES = 5


@dataclass(frozen=True)
class Outgoing:
    delivery_id: str
    token: str
    url: str
    body: bytes
    headers: dict[str, str]


@dataclass(frozen=True)
class Outcome:
    status_code: int | None
    duration_ms: int
    excerpt: str
    error: str | None
    retry_after: float | None
    # The outbound guard refused the URL: a decision of policy, not a failure that waiting
    # cures, so the delivery fails at once instead of going through the retry schedule.
    refused: bool = False


class DeliveryService:
    def __init__(
        self,
        uow: Callable[[], UnitOfWork],
        box: SecretBox,
        schedule: tuple[int, ...],
        request_seconds: float,
    ) -> None:
        self._uow = uow
        self._box = box
        self._schedule = schedule
        self._hold = timedelta(seconds=request_seconds + 20)

    @property
    def final_step(self) -> int:
        return len(self._schedule)

    def claim(self, delivery_id: str) -> Outgoing | None:
        """Take the delivery's next attempt, or None if it is not ours to send now."""
        with self._uow() as uow:
            now = uow.now()
            delivery = uow.webhooks.delivery_unscoped(delivery_id)
            if delivery is None or not _due(delivery, now):
                return None
            endpoint = uow.webhooks.locked_endpoint(delivery.endpoint_id)
            outgoing = self._take(uow, delivery, endpoint, now)
            try:
                uow.commit()
            except StaleDataError:
                return None  # another worker took it first
            return outgoing

    def record(self, outgoing: Outgoing, outcome: Outcome) -> str | None:
        """Record the attempt; returns the delivery's status after it (``succeeded``,
        ``pending`` for a retry, ``failed``), or None if the attempt was no longer its own."""
        for _ in range(_RACE_RETRIES):
            with self._uow() as uow:
                now = uow.now()
                delivery = uow.webhooks.delivery_unscoped(outgoing.delivery_id)
                if delivery is None or delivery.claim_token != outgoing.token:
                    return None  # deleted, or taken back after its hold lapsed
                endpoint = uow.webhooks.locked_endpoint(delivery.endpoint_id)
                uow.add(_attempt(delivery.id, now, outcome))
                delivery.attempts += 1
                self._next(delivery, endpoint, outcome, now)
                try:
                    uow.commit()
                except StaleDataError:
                    continue
                return delivery.status
        return None

    def _take(
        self, uow: UnitOfWork, delivery: Delivery, endpoint: Endpoint | None, now: datetime
    ) -> Outgoing | None:
        if endpoint is None or not endpoint.enabled:
            delivery.failed(now)
            return None
        if uow.webhooks.in_flight(endpoint.id, now) >= MAX_IN_FLIGHT_PER_ENDPOINT:
            delivery.defer(now + timedelta(seconds=DEFER_SECONDS), now)
            return None
        event = uow.webhooks.event(delivery.event_id)
        if event is None:
            delivery.failed(now)
            return None
        token = uuid.uuid4().hex
        delivery.take(token, now, self._hold)
        timestamp = int(now.timestamp())
        secrets = [self._box.open(c) for c in endpoint.secrets_in_use(now)]
        headers = {
            "Content-Type": "application/json",
            "webhook-id": event.id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": signature_header(secrets, event.id, timestamp, event.body),
        }
        if event.request_id:
            headers["X-Request-Id"] = event.request_id
        return Outgoing(delivery.id, token, endpoint.url, event.body.encode(), headers)

    def _next(
        self, delivery: Delivery, endpoint: Endpoint | None, outcome: Outcome, now: datetime
    ) -> None:
        code = outcome.status_code
        if code is not None and 200 <= code < 300:
            delivery.succeeded(now)
            if endpoint is not None:
                endpoint.delivered()
            return
        if code == 410 and endpoint is not None:
            delivery.failed(now)
            endpoint.disable("the endpoint answered 410 Gone", now)
            log.warning("webhook_endpoint_disabled", endpoint_id=endpoint.id, reason="410")
            return
        if endpoint is not None:
            endpoint.failed_delivery(now)
        delay = None if outcome.refused else self._delay(delivery.schedule_step, outcome)
        if delay is None:
            delivery.failed(now)
        else:
            delivery.retry_at(now + delay, now)

    def _delay(self, step: int, outcome: Outcome) -> timedelta | None:
        """The schedule's next gap with ±20% jitter; a longer ``Retry-After`` on 429 or 5xx
        wins."""
        if step >= len(self._schedule):
            return None
        seconds = self._schedule[step] * random.uniform(0.8, 1.2)  # noqa: S311 (jitter)
        code = outcome.status_code or 0
        if outcome.retry_after and (code == 429 or code >= 500) and outcome.retry_after > seconds:
            return min(timedelta(seconds=outcome.retry_after), MAX_RETRY_AFTER)
        return timedelta(seconds=seconds)


def _due(delivery: Delivery, now: datetime) -> bool:
    if not delivery.pending or delivery.next_attempt_at is None or delivery.next_attempt_at > now:
        return False
    return delivery.in_flight_until is None or delivery.in_flight_until <= now


def _attempt(delivery_id: str, now: datetime, outcome: Outcome) -> DeliveryAttempt:
    return DeliveryAttempt(
        delivery_id=delivery_id,
        at=now - timedelta(milliseconds=outcome.duration_ms),
        status_code=outcome.status_code,
        duration_ms=outcome.duration_ms,
        error=(outcome.error or None) and outcome.error[:1000],
        response_excerpt=outcome.excerpt[:1024],
    )
