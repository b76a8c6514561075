"""Tenants and API keys: creating them, and authenticating a presented key."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.exc import IntegrityError

from domain import audit
from domain.auth import Principal, display_prefix, generate_key, hash_key, same_hash, well_formed
from domain.errors import AuthenticationFailed, Conflict, FieldError, NotFound, ValidationFailed
from domain.ids import looks_like, new_id
from domain.key_cache import KeyCache
from domain.model import ApiKey, AuditEvent, Role, Tenant
from domain.pagination import Page, decode_cursor, paginate
from domain.quotas import QuotaCheck
from domain.unit_of_work import UnitOfWork

LAST_USED_RESOLUTION = timedelta(seconds=60)
# A cached key is read again this often, so that its last use is written to the minute.
REFRESH_SECONDS = LAST_USED_RESOLUTION.total_seconds() / 2


@dataclass(frozen=True)
class NewKey:
    record: ApiKey
    secret: str


class AccessService:
    def __init__(
        self,
        uow: Callable[[], UnitOfWork],
        keys: KeyCache | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        reads: Callable[[], UnitOfWork] | None = None,
        quotas: QuotaCheck | None = None,
    ) -> None:
        self._quotas = quotas
        self._uow = uow
        self._reads = reads or uow  # reads alone: outside a transaction, maybe on a replica
        self._keys = keys or KeyCache(refresh_after=REFRESH_SECONDS)
        self._clock = clock  # a cached key's expiry is judged by it, without the database

    def create_tenant(self, name: str) -> Tenant:
        name = name.strip()
        if not 1 <= len(name) <= 200:
            raise ValidationFailed([FieldError("name", "A tenant name is 1 to 200 characters.")])
        with self._uow() as uow:
            tenant = Tenant(id=new_id("ten"), name=name, created_at=uow.now())
            uow.add(tenant)
            try:
                uow.commit()
            except IntegrityError:
                raise Conflict(f"a tenant named {name!r} exists already") from None
            return tenant

    def find_tenant(self, id_or_name: str) -> Tenant:
        with self._uow() as uow:
            tenant = (
                uow.tenants.get(id_or_name)
                if looks_like("ten", id_or_name)
                else uow.tenants.by_name(id_or_name)
            )
            if tenant is None:
                raise NotFound(f"no tenant {id_or_name!r}")
            return tenant

    def create_key(
        self, tenant_id: str, name: str, role: Role, expires_at: datetime | None = None
    ) -> NewKey:
        secret = generate_key()
        with self._uow() as uow:
            tenant = uow.tenants.locked(tenant_id)
            if tenant is None:
                raise NotFound(f"no tenant {tenant_id!r}")
            if self._quotas is not None:
                self._quotas.api_keys(uow, tenant)
            record = ApiKey(
                id=new_id("key"),
                tenant_id=tenant_id,
                name=name,
                role=str(role),
                prefix=display_prefix(secret),
                key_hash=hash_key(secret),
                created_at=uow.now(),
                expires_at=expires_at,
            )
            uow.add(record)
            audit.record(
                uow, tenant_id, "api_key.create", "api_key", record.id, name=name, role=str(role)
            )
            uow.commit()
            return NewKey(record, secret)

    def list_keys(self, principal: Principal, limit: int, cursor: str | None) -> Page[ApiKey]:
        before = decode_cursor(cursor, "key") if cursor else None
        with self._uow() as uow:
            return paginate(uow.keys.page(principal.tenant_id, before, limit + 1), limit)

    def revoke_key(self, principal: Principal, key_id: str) -> None:
        """Revoked keys fail at once on this process, and within a second on every other (see
        ``domain.key_cache``)."""
        with self._uow() as uow:
            record = (
                uow.keys.get(principal.tenant_id, key_id) if looks_like("key", key_id) else None
            )
            if record is None:
                raise NotFound(f"no API key {key_id}")
            if record.revoked_at is None:
                record.revoked_at = uow.now()
                audit.record(uow, principal.tenant_id, "api_key.revoke", "api_key", record.id)
            uow.commit()
        self._keys.clear()

    def audit_events(
        self, principal: Principal, limit: int, cursor: str | None
    ) -> Page[AuditEvent]:
        before = decode_cursor(cursor, "aud") if cursor else None
        with self._reads() as uow:
            return paginate(uow.keys.audit_page(principal.tenant_id, before, limit + 1), limit)

    def authenticate(self, presented: str) -> Principal:
        """The principal behind a key, or ``AuthenticationFailed`` (unknown, revoked, expired)."""
        if not well_formed(presented):
            raise AuthenticationFailed("the API key is malformed")
        digest = hash_key(presented)
        cached = self._keys.get(digest, self._clock())
        if cached is not None:
            return cached
        ticket = self._keys.ticket()
        with self._uow() as uow:
            record = uow.keys.by_hash(digest)
            if record is None or not same_hash(record.key_hash, digest):
                raise AuthenticationFailed("the API key is not known")
            now = uow.now()
            if not record.usable_at(now):
                raise AuthenticationFailed("the API key is revoked or expired")
            if record.last_used_at is None or now - record.last_used_at > LAST_USED_RESOLUTION:
                # Sampled, not written on every request: at most one write a key a minute.
                uow.keys.touch(record.id, now, now - LAST_USED_RESOLUTION)
                uow.commit()
            found = Principal(tenant_id=record.tenant_id, key_id=record.id, role=Role(record.role))
        self._keys.put(digest, ticket, found, record.expires_at)
        return found
