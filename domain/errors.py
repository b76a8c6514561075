"""Domain exceptions. Each has a stable problem slug; the API maps them to RFC 9457 problems."""

from __future__ import annotations

from dataclasses import dataclass


class DomainError(Exception):
    slug = "domain-error"
    title = "Request failed"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


@dataclass(frozen=True)
class FieldError:
    field: str
    message: str


class ValidationFailed(DomainError):
    slug = "validation-error"
    title = "Invalid request"

    def __init__(
        self, errors: list[FieldError], detail: str = "The request has invalid fields."
    ) -> None:
        super().__init__(detail)
        self.errors = errors


class NotFound(DomainError):
    slug = "not-found"
    title = "Not found"


class Conflict(DomainError):
    slug = "conflict"
    title = "Conflict"


class IllegalTransition(Conflict):
    slug = "illegal-transition"
    title = "The job's state does not allow this"


class LeaseLost(DomainError):
    """A run tried to write to a job whose current attempt is no longer its own."""

    slug = "lease-lost"
    title = "Lease lost"


class StorageUnavailable(DomainError):
    slug = "storage-unavailable"
    title = "Storage unavailable"


class AuthenticationFailed(DomainError):
    slug = "unauthenticated"
    title = "Unauthenticated"
