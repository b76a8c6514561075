"""The queue representation of ``GET /v1/queues`` and of a pause or resume."""

from __future__ import annotations

from typing import Any

import marshmallow as ma

from domain.queue_control.service import QueueView
from domain.queues import WAITING_REASONS

WaitingSchema = ma.Schema.from_dict(
    {reason: ma.fields.Integer(required=True) for reason in WAITING_REASONS}, name="Waiting"
)


class QueueSchema(ma.Schema):
    name = ma.fields.String(required=True)
    waiting = ma.fields.Nested(
        WaitingSchema,
        required=True,
        metadata={
            "description": "Queued jobs by why they wait: `capacity` (for a place in the "
            "queue's window, or a worker), `run_at` (not yet due, as submitted), `backoff` (not "
            "yet due, a retry), `paused` (held by a pause), `concurrency` and `rate` (held by "
            "their keys)."
        },
    )
    running = ma.fields.Integer(required=True)
    oldest_due_seconds = ma.fields.Float(
        required=True, metadata={"description": "How long the oldest due job has waited."}
    )
    paused = ma.fields.Boolean(required=True)
    paused_for_every_tenant = ma.fields.Boolean(
        required=True,
        metadata={
            "description": "Paused by the operator for every tenant (`hopper queues pause`); "
            "only the operator can resume it."
        },
    )


class QueueListSchema(ma.Schema):
    data = ma.fields.List(ma.fields.Nested(QueueSchema), required=True)


def queue_body(view: QueueView) -> dict[str, Any]:
    return {
        "name": view.queue,
        "waiting": {reason: view.waiting.get(reason, 0) for reason in WAITING_REASONS},
        "running": view.running,
        "oldest_due_seconds": round(view.oldest_due_seconds, 3),
        "paused": view.paused,
        "paused_for_every_tenant": view.paused_for_every_tenant,
    }
