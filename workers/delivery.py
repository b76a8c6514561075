"""Sends one webhook delivery attempt: claim it (signed now), POST it through the guarded client,
record the answer."""

from __future__ import annotations

import structlog

from domain.services.delivery import DeliveryService, Outcome
from workers import instruments
from workers.outbound import OutboundClient

log = structlog.get_logger(__name__)

# A delivery's status after an attempt, as ``hopper_webhook_deliveries_total`` names it; an
# attempt whose hold lapsed before it was recorded counts as ``lost``.
_DELIVERY_OUTCOMES = {"succeeded": "delivered", "pending": "retrying", "failed": "failed"}


class DeliveryRunner:
    def __init__(self, deliveries: DeliveryService, client: OutboundClient) -> None:
        self._deliveries = deliveries
        self._client = client

    def run(self, delivery_id: str) -> None:
        outgoing = self._deliveries.claim(delivery_id)
        if outgoing is None:
            return
        answer = self._client.post(outgoing.url, outgoing.body, outgoing.headers)
        outcome = Outcome(
            status_code=answer.status_code,
            duration_ms=answer.duration_ms,
            excerpt=answer.excerpt,
            error=answer.error,
            retry_after=answer.retry_after,
            refused=answer.refused,
        )
        status = self._deliveries.record(outgoing, outcome)
        instruments.DELIVERY_DURATION.observe(answer.duration_ms / 1000)
        instruments.DELIVERIES.labels(_DELIVERY_OUTCOMES.get(status, "lost")).inc()
        log.info(
            "webhook_attempt",
            delivery_id=delivery_id,
            status_code=answer.status_code,
            duration_ms=answer.duration_ms,
            error=answer.error,
        )
