"""Outbound HTTP for webhook deliveries: the guard that decides where requests may go, and the
client that sends them only there."""

from workers.outbound.client import Answer, OutboundClient
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
    "system_resolve",
]
