"""Idempotency keys: a retried POST with the same key and body does nothing again.

Phase one (before the view) claims the key with an ``in_flight`` row, whose primary key makes
exactly one of concurrent requests the owner. Phase two binds the claim to what the request
creates: the transaction that commits the change also moves the row to ``committed``, so the
change and the key stand or fall together. Phase three stores the answer, to replay it.

A stored answer may carry a secret (a new API key's, a rotated webhook secret), so it is sealed
under the encryption keys like every secret at rest, and replayed only to the API key that made
the request: another key of the tenant is told the key is taken (409), never shown the answer.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from domain.errors import Conflict, FieldError, ValidationFailed
from domain.model import IdempotencyRecord
from domain.repositories import database_now
from domain.secrets import SecretBox
from domain.unit_of_work import UnitOfWork

ABANDONED_AFTER = timedelta(seconds=60)  # an in-flight claim older than this lost its request


@dataclass(frozen=True)
class Claim:
    tenant_id: str
    route: str
    key: str
    api_key_id: str | None = None  # the credential that made the request


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
        self,
        uow: Callable[[], UnitOfWork],
        box: SecretBox,
        keep: timedelta = timedelta(hours=24),
    ) -> None:
        self._uow = uow
        self._box = box
        self._keep = keep

    def begin(self, claim: Claim, body_hash: str) -> Replay | None:
        """Claim the key, or return the stored answer to replay. Raises Conflict (in flight) or
        ValidationFailed (same key, another body)."""
        with self._uow() as uow:
            if uow.records.claim_idempotency(**_new_record(claim, body_hash)):
                uow.commit()
                return None
            now = uow.now()
            found = uow.session.get(IdempotencyRecord, (claim.tenant_id, claim.route, claim.key))
            if found is not None and now - found.created_at > self._keep:
                self._take_over_expired(uow, found, claim, body_hash, now)
                return None
            if found is None:  # it was freed between the two statements: as if in flight
                raise Conflict("a request with this Idempotency-Key is in flight")
            return self._existing(uow, found, claim, body_hash, now)

    def _take_over_expired(
        self,
        uow: UnitOfWork,
        found: IdempotencyRecord,
        claim: Claim,
        body_hash: str,
        now: datetime,
    ) -> None:
        """An expired record, not purged yet, frees its key. Two requests taking it over at once
        race on its row: the one that loses is told the key is in flight."""
        fresh = IdempotencyRecord(**_new_record(claim, body_hash), created_at=now, updated_at=now)
        try:
            uow.session.delete(found)
            uow.session.flush()
            uow.add(fresh)
            uow.commit()
        except (IntegrityError, StaleDataError):
            raise Conflict("a request with this Idempotency-Key is in flight") from None

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
                        response_body=self._box.seal(body),
                        response_headers=headers,
                        updated_at=database_now(uow.session),
                    )
                    .execution_options(synchronize_session=False)
                )
            else:
                uow.session.execute(
                    delete(IdempotencyRecord)
                    .where(*where, IdempotencyRecord.state == "in_flight")
                    .execution_options(synchronize_session=False)
                )
            uow.commit()

    def _existing(
        self,
        uow: UnitOfWork,
        found: IdempotencyRecord,
        claim: Claim,
        body_hash: str,
        now: datetime,
    ) -> Replay | None:
        if found.api_key_id is None or found.api_key_id != claim.api_key_id:
            raise Conflict(
                "This Idempotency-Key was used by another credential; its answer is replayed "
                "only to the API key that made the request."
            )
        if found.request_hash != body_hash:
            raise ValidationFailed(
                [FieldError("header.Idempotency-Key", "This key was used with a different body.")],
                "The Idempotency-Key was already used with a different request body.",
            )
        if found.state == "done" and found.response_status is not None:
            return Replay(found.response_status, self._opened(found), found.response_headers or {})
        if found.state == "in_flight" and now - found.updated_at > ABANDONED_AFTER:
            found.updated_at = now  # its request died before committing anything: take it over
            uow.commit()
            return None
        raise Conflict("a request with this Idempotency-Key is in flight")

    def _opened(self, found: IdempotencyRecord) -> str:
        try:
            return self._box.open(found.response_body or "")
        except ValueError:  # its encryption key was removed: better refused than run again
            raise Conflict(
                "The answer kept for this Idempotency-Key can no longer be read."
            ) from None


class BindClaim:
    """The unit of work's commit hook: binds the request's claim to the change it commits."""

    def before_commit(self, session: Session, now: Callable[[], datetime]) -> None:
        bind(session, now)

    def after_commit(self) -> None:
        current_claim.set(None)  # bound to this change; later commits are not


def bind(session: Session, now: Callable[[], datetime]) -> None:
    """Inside the transaction of the request's change: the claim becomes ``committed``."""
    claim = current_claim.get()
    if claim is None:
        return
    done = session.execute(
        update(IdempotencyRecord)
        .where(*_where(claim), IdempotencyRecord.state == "in_flight")
        .values(state="committed", updated_at=database_now(session))
        .execution_options(synchronize_session=False)
    )
    if done.rowcount != 1:  # type: ignore[attr-defined]
        raise Conflict("the Idempotency-Key was taken over by another request")


def _where(claim: Claim) -> tuple[Any, ...]:
    return (
        IdempotencyRecord.tenant_id == claim.tenant_id,
        IdempotencyRecord.route == claim.route,
        IdempotencyRecord.key == claim.key,
    )


def _new_record(claim: Claim, body_hash: str) -> dict[str, Any]:
    return {
        "tenant_id": claim.tenant_id,
        "route": claim.route,
        "key": claim.key,
        "request_hash": body_hash,
        "api_key_id": claim.api_key_id,
        "state": "in_flight",
    }
