"""Factories: tenants and keys with unique names, so tests never collide."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING

from domain.dispatch.service import DispatchService
from domain.model import Role
from domain.services.access import AccessService

if TYPE_CHECKING:
    from hopper.bootstrap import Container


def unique(prefix: str = "t") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


@dataclass(frozen=True)
class TenantKeys:
    tenant_id: str
    admin: str
    submitter: str
    reader: str

    def headers(self, role: str = "submitter") -> dict[str, str]:
        return {"Authorization": f"Bearer {getattr(self, role)}"}


def make_tenant(access: AccessService) -> TenantKeys:
    tenant = access.create_tenant(unique("tenant"))
    keys = {role: access.create_key(tenant.id, f"{role} key", Role(role)).secret for role in Role}
    return TenantKeys(tenant.id, keys["admin"], keys["submitter"], keys["reader"])


def tenant_roles(made: TenantKeys) -> dict[str, str]:
    """The tenant's id and a key per role, as the end-to-end tests pass them around."""
    return {
        "tenant_id": made.tenant_id,
        "admin": made.admin,
        "submitter": made.submitter,
        "reader": made.reader,
    }


def dispatch_now(container: Container, queue: str) -> int:
    """Every ready job of ``queue`` to the broker now, whatever is in flight: what a scheduler's
    dispatcher does, for a test that runs none (jobs left in flight by other tests cannot hold
    this one's out of a window)."""
    return DispatchService(container.uow, window=1_000_000).fill(queue)
