"""Idempotency keys: a retried POST with the same key and body does nothing again.

Phase one (before the view) claims the key with an ``in_flight`` row, whose primary key makes
exactly one of concurrent requests the owner. Phase two binds the claim to what the request
creates: the transaction that commits the change also moves the row to ``committed``, so the
change and the key stand or fall together. Phase three stores the answer, to replay it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from domain.errors import Conflict, FieldError, ValidationFailed
from domain.model import IdempotencyRecord

if TYPE_CHECKING:
    from domain.unit_of_work import UnitOfWork

ABANDONED_AFTER = timedelta(seconds=60)  # an in-flight claim older than this lost its request


@dataclass(frozen=True)
class Claim:
    tenant_id: str
    route: str
    key: str


@dataclass(frozen=True)
class Replay:
    status: int
    body: str
    headers: dict[str, str]


current_claim: ContextVar[Claim | None] = ContextVar("current_claim", default=None)


def request_hash(body: Any) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()


class IdempotencyService:
    def __init__(
        self, uow: Callable[[], UnitOfWork], keep: timedelta = timedelta(hours=24)
    ) -> None:
        self._uow = uow
        self._keep = keep

    def begin(self, claim: Claim, body_hash: str) -> Replay | None:
        """Claim the key, or return the stored answer to replay. Raises Conflict (in flight) or
        ValidationFailed (same key, another body)."""
        with self._uow() as uow:
            now = uow.now()
            found = uow.session.get(IdempotencyRecord, (claim.tenant_id, claim.route, claim.key))
            if found is not None and now - found.created_at > self._keep:
                uow.session.delete(found)  # expired, though not purged yet: the key is free
                uow.session.flush()
                found = None
            if found is not None:
                return self._existing(uow, found, body_hash, now)
            uow.add(_new_record(claim, body_hash, now))
            try:
                uow.commit()
            except IntegrityError:
                raise Conflict("a request with this Idempotency-Key is in flight") from None
            return None

    def finish(self, claim: Claim, status: int, body: str, headers: dict[str, str]) -> None:
        """Store a 2xx answer for replay; after any other answer, free the key again (unless
        the change committed, which binds it)."""
        with self._uow() as uow:
            where = _where(claim)
            if 200 <= status < 300:
                uow.session.execute(
                    update(IdempotencyRecord)
                    .where(*where)
                    .values(
                        state="done",
                        response_status=status,
                        response_body=body,
                        response_headers=headers,
                        updated_at=uow.now(),
                    )
                )
            else:
                uow.session.execute(
                    delete(IdempotencyRecord).where(*where, IdempotencyRecord.state == "in_flight")
                )
            uow.commit()

    def _existing(
        self, uow: UnitOfWork, found: IdempotencyRecord, body_hash: str, now: datetime
    ) -> Replay | None:
        if found.request_hash != body_hash:
            raise ValidationFailed(
                [FieldError("header.Idempotency-Key", "This key was used with a different body.")],
                "The Idempotency-Key was already used with a different request body.",
            )
        if found.state == "done" and found.response_status is not None:
            return Replay(
                found.response_status, found.response_body or "", found.response_headers or {}
            )
        if found.state == "in_flight" and now - found.updated_at > ABANDONED_AFTER:
            found.updated_at = now  # its request died before committing anything: take it over
            uow.commit()
            return None
        raise Conflict("a request with this Idempotency-Key is in flight")


def bind(session: Session, now: datetime) -> None:
    """Called by the unit of work inside the transaction of the request's change."""
    claim = current_claim.get()
    if claim is None:
        return
    done = session.execute(
        update(IdempotencyRecord)
        .where(*_where(claim), IdempotencyRecord.state == "in_flight")
        .values(state="committed", updated_at=now)
    )
    if done.rowcount != 1:  # type: ignore[attr-defined]
        raise Conflict("the Idempotency-Key was taken over by another request")


def _where(claim: Claim) -> tuple[Any, ...]:
    return (
        IdempotencyRecord.tenant_id == claim.tenant_id,
        IdempotencyRecord.route == claim.route,
        IdempotencyRecord.key == claim.key,
    )


def _new_record(claim: Claim, body_hash: str, now: datetime) -> IdempotencyRecord:
    return IdempotencyRecord(
        tenant_id=claim.tenant_id,
        route=claim.route,
        key=claim.key,
        request_hash=body_hash,
        state="in_flight",
        created_at=now,
        updated_at=now,
    )
