"""Job types from a team's own package: the ``hopper.job_types`` entry-point group, and
``HOPPER_JOB_TYPES=package.module:attr`` (comma-separated for several).

Each entry point, and each ``module:attr``, names a ``JobType`` or a list of them. They are loaded
once per process, at start, and checked there: a type that cannot be imported, that is not a
``JobType``, whose schemas do not build, or whose name is taken stops the process with one line
(a ``ConfigError``), never a job later.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterable, Iterator
from functools import cache
from importlib.metadata import entry_points
from typing import Any, NamedTuple

import marshmallow as ma

from domain import queues
from domain.job_types.registry import JobType
from domain.settings import ConfigError

ENTRY_POINT_GROUP = "hopper.job_types"
SPEC_VARIABLE = "HOPPER_JOB_TYPES"

NAME = re.compile(r"^[a-z][a-z0-9_.-]{0,99}$")
QUEUE = re.compile(r"^[a-z][a-z0-9_-]{0,99}$")
# The bounds `POST /v1/jobs` puts on a job's own timeout and attempts: a type's defaults too.
TIMEOUT_SECONDS = range(1, 86_400 + 1)
MAX_ATTEMPTS = range(1, 25 + 1)


class Plugin(NamedTuple):
    source: str  # where it was declared, for the one line that names a problem
    job_type: JobType


@cache
def plugin_job_types(spec: str | None) -> tuple[Plugin, ...]:
    """Every plugin type, from the entry points and then ``spec``, each checked."""
    found: list[Plugin] = []
    for source, value in _sources(spec):
        for job_type in _job_types(source, value):
            _check(source, job_type)
            found.append(Plugin(source, job_type))
    return tuple(found)


def check_unique(plugins: Iterable[Plugin], built_in: Iterable[str]) -> None:
    """A plugin type may not take the name of a built-in type or of another plugin's."""
    taken = dict.fromkeys(built_in, "Hopper's built-in types")
    for source, job_type in plugins:
        if job_type.name in taken:
            raise _error(
                source, f"job type {job_type.name!r} is declared already, by {taken[job_type.name]}"
            )
        taken[job_type.name] = source


def _sources(spec: str | None) -> Iterator[tuple[str, Any]]:
    for point in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda p: p.name):
        source = f"entry point {point.name} = {point.value} ({ENTRY_POINT_GROUP})"
        yield source, _imported(source, point.load)
    for target in (part.strip() for part in (spec or "").split(",")):
        if target:
            source = f"{SPEC_VARIABLE} {target}"
            yield source, _imported(source, lambda target=target: _attribute(target))


def _attribute(target: str) -> Any:
    module, _, attr = target.partition(":")
    value: Any = importlib.import_module(module)
    for part in attr.split("."):
        value = getattr(value, part)
    return value


def _imported(source: str, load: Any) -> Any:
    try:
        return load()
    except Exception as exc:  # whatever the team's module raises while it is imported
        raise _error(source, f"cannot be loaded: {type(exc).__name__}: {exc}") from None


def _job_types(source: str, value: Any) -> list[JobType]:
    items = list(value) if isinstance(value, list | tuple) else [value]
    for item in items:
        if not isinstance(item, JobType):
            raise _error(source, f"is a {type(item).__name__}, not a JobType or a list of them")
    if not items:
        raise _error(source, "names an empty list of job types")
    return items


def _check(source: str, job_type: JobType) -> None:
    for problem in _problems(job_type):
        raise _error(source, f"job type {job_type.name!r}: {problem}")


def _problems(job_type: JobType) -> Iterator[str]:
    if not isinstance(job_type.name, str) or not NAME.match(job_type.name):
        yield "the name must be 1-100 of a-z, 0-9, '_', '.', '-', starting with a letter"
    if not isinstance(job_type.queue, str) or not QUEUE.match(job_type.queue):
        yield "the queue must be 1-100 of a-z, 0-9, '_', '-', starting with a letter"
    if job_type.queue == queues.WEBHOOKS:
        yield f"the queue {queues.WEBHOOKS!r} is the webhook deliveries'"
    if not isinstance(job_type.description, str) or not job_type.description.strip():
        yield "the description must be a non-empty string"
    yield from _schema_problems(job_type)
    if not callable(job_type.handler):
        yield "the handler is not callable"
    if not _whole_in(job_type.default_timeout_seconds, TIMEOUT_SECONDS):
        yield "default_timeout_seconds must be a whole number from 1 to 86400"
    if not _whole_in(job_type.default_max_attempts, MAX_ATTEMPTS):
        yield "default_max_attempts must be a whole number from 1 to 25"
    yield from _secret_field_problems(job_type)


def _whole_in(value: object, allowed: range) -> bool:
    return type(value) is int and value in allowed  # not a bool, not a float


def _secret_field_problems(job_type: JobType) -> Iterator[str]:
    names = job_type.secret_fields
    if not isinstance(names, tuple) or not all(isinstance(name, str) for name in names):
        yield "secret_fields must be a tuple of payload field names"
        return
    schema = job_type.payload_schema
    if not names or not (isinstance(schema, type) and issubclass(schema, ma.Schema)):
        return  # nothing to check, or a schema _schema_problems refuses already
    try:
        fields = schema().fields
    except Exception:  # _schema_problems names a payload schema that does not build
        return
    loaded = {field.attribute or name for name, field in fields.items()}
    for name in names:
        if name not in loaded:
            yield f"secret field {name!r} is not a field of the payload schema"


def _schema_problems(job_type: JobType) -> Iterator[str]:
    for field in ("payload_schema", "result_schema"):
        schema = getattr(job_type, field)
        if not (isinstance(schema, type) and issubclass(schema, ma.Schema)):
            yield f"{field} must be a marshmallow Schema class, not {schema!r}"
            continue
        try:
            schema()
        except Exception as exc:  # a schema whose own declaration is broken
            yield f"{field} {schema.__name__} does not build: {type(exc).__name__}: {exc}"


def _error(source: str, problem: str) -> ConfigError:
    return ConfigError(source, " ".join(problem.split()))  # one line, whatever the message holds
