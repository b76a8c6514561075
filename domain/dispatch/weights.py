"""A tenant's weight: its share of every queue against the other tenants' (``fairness``). An
operator's setting (``hopper tenants set-weight``), recorded in the tenant's audit log."""

from __future__ import annotations

from collections.abc import Callable

from domain import audit
from domain.errors import FieldError, NotFound, ValidationFailed
from domain.model import Tenant
from domain.unit_of_work import UnitOfWork

MAX_WEIGHT = 1000


class WeightService:
    def __init__(self, uow: Callable[[], UnitOfWork]) -> None:
        self._uow = uow

    def set_weight(self, tenant_id: str, weight: int) -> Tenant:
        if not 1 <= weight <= MAX_WEIGHT:
            message = f"A weight is a whole number from 1 to {MAX_WEIGHT}."
            raise ValidationFailed([FieldError("weight", message)])
        with self._uow() as uow:
            tenant = uow.tenants.get(tenant_id)
            if tenant is None:
                raise NotFound(f"no tenant {tenant_id!r}")
            before, tenant.weight = tenant.weight, weight
            audit.record(
                uow,
                tenant.id,
                "tenant.set_weight",
                "tenant",
                tenant.id,
                weight=weight,
                before=before,
            )
            uow.commit()
            return tenant
