"""A tenant's ``http`` job settings: its target secret (created or rotated by an admin, shown
once) and the hosts its jobs may reach on private addresses. Changes are audited."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.exc import IntegrityError

from domain import audit
from domain.auth import Principal
from domain.errors import FieldError, ValidationFailed
from domain.http_targets.model import TargetSettings
from domain.secrets import SecretBox
from domain.unit_of_work import UnitOfWork
from domain.webhooks.signing import new_secret

ROTATION_OVERLAP = timedelta(hours=24)
MAX_ALLOWED_HOSTS = 100
_HOST_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


@dataclass(frozen=True)
class Signing:
    """What a worker needs of a tenant to send its ``http`` jobs."""

    secrets: list[str]  # newest first; two for 24 h after a rotation
    allowed_hosts: frozenset[str]


class TargetSettingsService:
    def __init__(self, uow: Callable[[], UnitOfWork], box: SecretBox) -> None:
        self._uow = uow
        self._box = box

    def rotate_secret(self, principal: Principal) -> str:
        """A new secret signs the tenant's requests from now on (the old one beside it for 24
        hours); returned once, never shown again."""
        secret = new_secret()
        with self._uow() as uow:
            settings = self._locked(uow, principal.tenant_id)
            first = settings.secret_ciphertext is None
            settings.rotate(self._box.seal(secret), uow.now(), ROTATION_OVERLAP)
            action = "http_target_secret.create" if first else "http_target_secret.rotate"
            audit.record(uow, principal.tenant_id, action, "tenant", principal.tenant_id)
            uow.commit()
        return secret

    def allowed_hosts(self, principal: Principal) -> list[str]:
        with self._uow() as uow:
            settings = uow.session.get(TargetSettings, principal.tenant_id)
            return list(settings.allowed_hosts) if settings else []

    def replace_allowed_hosts(self, principal: Principal, hosts: Sequence[str]) -> list[str]:
        """Replace the tenant's allow-list of private hosts."""
        allowed = normalized_hosts(hosts)
        with self._uow() as uow:
            settings = self._locked(uow, principal.tenant_id)
            before = list(settings.allowed_hosts)
            settings.allowed_hosts = allowed
            settings.updated_at = uow.now()
            audit.record(
                uow,
                principal.tenant_id,
                "http_target_allowlist.update",
                "tenant",
                principal.tenant_id,
                added=sorted(set(allowed) - set(before)),
                removed=sorted(set(before) - set(allowed)),
            )
            uow.commit()
        return allowed

    def signing(self, tenant_id: str) -> Signing:
        with self._uow() as uow:
            settings = uow.session.get(TargetSettings, tenant_id)
            if settings is None:
                return Signing([], frozenset())
            ciphertexts = settings.secrets_in_use(uow.now())
            return Signing(
                [self._box.open(c) for c in ciphertexts], frozenset(settings.allowed_hosts)
            )

    def _locked(self, uow: UnitOfWork, tenant_id: str) -> TargetSettings:
        """The tenant's row, locked for this transaction; made on first use."""
        found = uow.session.get(TargetSettings, tenant_id, with_for_update=True)
        if found is not None:
            return found
        created = TargetSettings(tenant_id=tenant_id, allowed_hosts=[], updated_at=uow.now())
        uow.add(created)
        try:
            uow.session.flush()
        except IntegrityError:  # another admin's first change won: take theirs
            uow.session.rollback()
            again = uow.session.get(TargetSettings, tenant_id, with_for_update=True)
            assert again is not None
            return again
        return created


def normalized_hosts(hosts: Sequence[str]) -> list[str]:
    """Lower-cased, without repeats, each a host name or an IP address; else a 422."""
    if len(hosts) > MAX_ALLOWED_HOSTS:
        raise ValidationFailed([FieldError("hosts", f"At most {MAX_ALLOWED_HOSTS} hosts.")])
    errors = [
        FieldError(f"hosts.{i}", "Not a host name or an IP address (no scheme, port or path).")
        for i, host in enumerate(hosts)
        if not _is_host(host)
    ]
    if errors:
        raise ValidationFailed(errors)
    return list(dict.fromkeys(canonical_host(host) for host in hosts))


def _is_host(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
        return True
    except ValueError:
        pass
    name = host.lower().rstrip(".")
    return 0 < len(name) <= 253 and all(_HOST_LABEL.match(label) for label in name.split("."))


def canonical_host(host: str) -> str:
    """A host as the allow-list keeps it: an address in its short form, a name in lower case
    without a trailing dot."""
    try:
        return str(ipaddress.ip_address(host.strip("[]")))
    except ValueError:
        return host.lower().rstrip(".")
