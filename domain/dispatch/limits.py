"""A tenant's limits for its concurrency keys and rates for its rate keys (``domain.dispatch.
keys``): read, set and removed by key, each change audited. Without one, the job type's default
holds. A change takes effect at the dispatcher's next pass, a quarter second at most."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy.exc import IntegrityError

from domain import audit
from domain.auth import Principal
from domain.dispatch.keys import MAX_KEY, MAX_LIMIT, parse_rate
from domain.dispatch.model import ConcurrencyLimit, RateLimit
from domain.errors import Conflict, FieldError, NotFound, ValidationFailed
from domain.unit_of_work import UnitOfWork

# What each kind of limit is called in the audit log, and the column that holds its value.
_KINDS: dict[type, tuple[str, str]] = {
    ConcurrencyLimit: ("concurrency_limit", "limit"),
    RateLimit: ("rate_limit", "rate"),
}


class KeyLimitService:
    def __init__(self, uow: Callable[[], UnitOfWork]) -> None:
        self._uow = uow

    def concurrency(self, principal: Principal, key: str) -> ConcurrencyLimit:
        return self._get(ConcurrencyLimit, principal, key)

    def set_concurrency(self, principal: Principal, key: str, limit: int) -> ConcurrencyLimit:
        if not 1 <= limit <= MAX_LIMIT:
            raise ValidationFailed([FieldError("limit", f"A limit is 1 to {MAX_LIMIT}.")])
        return self._set(ConcurrencyLimit, principal, key, limit)

    def remove_concurrency(self, principal: Principal, key: str) -> None:
        self._remove(ConcurrencyLimit, principal, key)

    def rate(self, principal: Principal, key: str) -> RateLimit:
        return self._get(RateLimit, principal, key)

    def set_rate(self, principal: Principal, key: str, rate: str) -> RateLimit:
        try:
            parse_rate(rate)
        except ValueError as exc:
            raise ValidationFailed([FieldError("rate", f"{exc}.")]) from None
        return self._set(RateLimit, principal, key, rate)

    def remove_rate(self, principal: Principal, key: str) -> None:
        self._remove(RateLimit, principal, key)

    def _get(self, model: Any, principal: Principal, key: str) -> Any:
        with self._uow() as uow:
            return _find(uow, model, principal, key)

    def _set(self, model: Any, principal: Principal, key: str, value: int | str) -> Any:
        _check_key(key)
        action, column = _KINDS[model]
        for _ in range(2):  # a first set of the key racing another: the second time, it exists
            with self._uow() as uow:
                now = uow.now()
                found = uow.session.get(model, (principal.tenant_id, key), with_for_update=True)
                if found is None:
                    found = model(tenant_id=principal.tenant_id, key=key)
                    uow.add(found)
                setattr(found, column, value)
                found.updated_at = now
                details = {"key": key, column: value}  # a key may be longer than an id
                tenant = principal.tenant_id
                audit.record(uow, tenant, f"{action}.set", "tenant", tenant, **details)
                try:
                    uow.commit()
                except IntegrityError:
                    continue
                return found
        raise Conflict(f"the {action.replace('_', ' ')} of key {key!r} is changing; try again")

    def _remove(self, model: Any, principal: Principal, key: str) -> None:
        with self._uow() as uow:
            uow.session.delete(_find(uow, model, principal, key))
            tenant, action = principal.tenant_id, f"{_KINDS[model][0]}.delete"
            audit.record(uow, tenant, action, "tenant", tenant, key=key)
            uow.commit()


def _find(uow: UnitOfWork, model: Any, principal: Principal, key: str) -> Any:
    found = uow.session.get(model, (principal.tenant_id, key))  # a key too long is none
    if found is None:
        raise NotFound(f"no {_KINDS[model][0].replace('_', ' ')} for key {key!r}")
    return found


def _check_key(key: str) -> None:
    if not 1 <= len(key) <= MAX_KEY:
        raise ValidationFailed([FieldError("key", f"A key is 1 to {MAX_KEY} characters.")])
