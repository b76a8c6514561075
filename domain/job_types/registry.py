"""A job type: its schemas, queue, defaults and handler; and the registry that holds them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import marshmallow as ma

from domain.context import JobContext
from domain.dispatch.keys import MAX_LIMIT, parse_rate
from domain.errors import FieldError

Handler = Callable[[dict[str, Any], JobContext], Any]


@dataclass(frozen=True)
class JobType:
    name: str
    description: str
    queue: str
    payload_schema: type[ma.Schema]
    result_schema: type[ma.Schema]
    handler: Handler
    default_timeout_seconds: int = 300
    default_max_attempts: int = 3
    retry_base_seconds: float | None = None
    retry_max_seconds: float | None = None
    # Top-level payload fields whose values are encrypted at rest and never shown: every
    # representation, log line and webhook body has "[redacted]" in their place.
    secret_fields: tuple[str, ...] = ()
    # The defaults of its jobs' keys (domain.dispatch.keys): at most this many jobs with one
    # concurrency key at once, and a rate key's rate ("10/second"), unless the tenant set its own.
    concurrency_limit: int | None = None
    rate_limit: str | None = None

    def validate_payload(self, payload: Any, prefix: str = "payload") -> list[FieldError]:
        return _validate(self.payload_schema(), payload, prefix)

    def load_payload(self, payload: Any) -> dict[str, Any]:
        loaded: dict[str, Any] = self.payload_schema().load(payload)
        return loaded

    def validate_result(self, result: Any) -> list[FieldError]:
        return _validate(self.result_schema(), result, "result")


def _validate(schema: ma.Schema, data: Any, prefix: str) -> list[FieldError]:
    if not isinstance(data, dict):
        return [FieldError(prefix, "Must be a JSON object.")]
    try:
        messages = schema.validate(data)
    except (OverflowError, ValueError, TypeError):  # a schema's own code choked on a value
        return [FieldError(prefix, "A value is out of the range this type takes.")]
    return [
        FieldError(f"{prefix}.{path}" if path else prefix, text)
        for path, text in _flatten(messages)
    ]


def _flatten(messages: Any, path: str = "") -> Iterator[tuple[str, str]]:
    if isinstance(messages, dict):
        for key, value in messages.items():
            name = "" if key == "_schema" else str(key)
            yield from _flatten(value, f"{path}.{name}".strip(".") if name else path)
    elif isinstance(messages, list) and all(isinstance(m, str) for m in messages):
        yield path, " ".join(messages)
    elif isinstance(messages, list):
        for item in messages:
            yield from _flatten(item, path)
    else:
        yield path, str(messages)


class UnknownJobType(KeyError):
    pass


class Registry:
    def __init__(self) -> None:
        self._types: dict[str, JobType] = {}

    def register(self, job_type: JobType) -> None:
        if job_type.name in self._types:
            raise ValueError(f"job type {job_type.name!r} is registered twice")
        limit = job_type.concurrency_limit
        if limit is not None and not 1 <= limit <= MAX_LIMIT:
            raise ValueError(f"job type {job_type.name!r}: concurrency_limit is 1 to {MAX_LIMIT}")
        if job_type.rate_limit is not None:
            parse_rate(job_type.rate_limit)  # a ValueError that says what is wrong
        self._types[job_type.name] = job_type

    def get(self, name: str) -> JobType:
        try:
            return self._types[name]
        except KeyError:
            raise UnknownJobType(name) from None

    def __contains__(self, name: object) -> bool:
        return name in self._types

    def __iter__(self) -> Iterator[JobType]:
        return iter(sorted(self._types.values(), key=lambda t: t.name))

    @property
    def queues(self) -> frozenset[str]:
        return frozenset(t.queue for t in self._types.values())
