"""Quotas: each tenant's ceilings on its unfinished jobs, stored payload bytes, API keys and
webhook endpoints. Past one, a submission or a creation is refused (``QuotaExceeded``, a
``429`` problem of type ``urn:hopper:problem:quota-exceeded`` that names the quota); work
already accepted is never touched."""

from domain.quotas.model import QUOTAS, QuotaExceeded, Quotas, TenantUsage
from domain.quotas.service import QuotaCheck, QuotaService

__all__ = ["QUOTAS", "QuotaCheck", "QuotaExceeded", "QuotaService", "Quotas", "TenantUsage"]
