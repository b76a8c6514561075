"""Audit events: who did what, when, from where. Written in the transaction of the change they
record; the request's actor, address and id come from the context the API sets per request."""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from domain.unit_of_work import UnitOfWork

from domain.ids import new_id
from domain.model import AuditEvent


@dataclass(frozen=True)
class RequestContext:
    key_id: str | None
    ip: str | None
    request_id: str | None


current_request: ContextVar[RequestContext | None] = ContextVar("current_request", default=None)


def record(
    uow: UnitOfWork, tenant_id: str, action: str, target_type: str, target_id: str, **details: Any
) -> None:
    context = current_request.get() or RequestContext(None, None, None)
    uow.add(
        AuditEvent(
            id=new_id("aud"),
            tenant_id=tenant_id,
            at=uow.now(),
            action=action,
            actor_key_id=context.key_id,
            target_type=target_type,
            target_id=target_id,
            ip=context.ip,
            request_id=context.request_id,
            details=details,
        )
    )
