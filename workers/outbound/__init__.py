"""Outbound HTTP for webhook deliveries: the guard that decides where requests may go, and the
client that sends them only there."""

from workers.outbound.client import Answer, OutboundClient, retry_after_seconds
from workers.outbound.guard import (
    Destination,
    OutboundGuard,
    OutboundPolicy,
    Refused,
    system_resolve,
)

__all__ = [
    "Answer",
    "Destination",
    "OutboundClient",
    "OutboundGuard",
    "OutboundPolicy",
    "Refused",
    "retry_after_seconds",
    "system_resolve",
]
