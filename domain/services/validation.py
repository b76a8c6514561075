"""Validation of a submitted job against its type, with field paths as the API reports them."""

from __future__ import annotations

from domain.commands import SubmitJob
from domain.dispatch.keys import MAX_KEY
from domain.errors import FieldError
from domain.job_types import Registry

MAX_METADATA_KEYS = 16
MAX_METADATA_KEY = 40
MAX_METADATA_VALUE = 500


def job_errors(registry: Registry, command: SubmitJob, prefix: str = "") -> list[FieldError]:
    def at(name: str) -> str:
        return f"{prefix}{name}"

    if command.type not in registry:
        known = ", ".join(t.name for t in registry)
        return [FieldError(at("type"), f"Unknown job type. Known types: {known}.")]
    errors = registry.get(command.type).validate_payload(command.payload, at("payload"))
    errors.extend(metadata_errors(command.metadata, at("metadata")))
    for name in ("concurrency_key", "rate_key"):
        key = getattr(command, name)
        if key is not None and not 1 <= len(key) <= MAX_KEY:
            errors.append(FieldError(at(name), f"A key is 1 to {MAX_KEY} characters."))
    return errors


def metadata_errors(metadata: dict[str, str], field: str) -> list[FieldError]:
    errors = []
    if len(metadata) > MAX_METADATA_KEYS:
        errors.append(FieldError(field, f"At most {MAX_METADATA_KEYS} keys."))
    for key, value in metadata.items():
        if not 1 <= len(key) <= MAX_METADATA_KEY:
            errors.append(
                FieldError(f"{field}.{key}", f"Keys are 1 to {MAX_METADATA_KEY} characters.")
            )
        if len(value) > MAX_METADATA_VALUE:
            errors.append(
                FieldError(f"{field}.{key}", f"Values are at most {MAX_METADATA_VALUE} characters.")
            )
    return errors
