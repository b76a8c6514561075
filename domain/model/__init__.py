"""The persistent model: mapped classes that also carry the rules of their own lifecycle."""

from domain.model.base import Base
from domain.model.job import Attempt, AttemptStatus, Job, JobStatus, Priority
from domain.model.records import AuditEvent, IdempotencyRecord
from domain.model.tenant import ApiKey, Role, Tenant

__all__ = [
    "ApiKey",
    "Attempt",
    "AttemptStatus",
    "AuditEvent",
    "Base",
    "IdempotencyRecord",
    "Job",
    "JobStatus",
    "Priority",
    "Role",
    "Tenant",
]
