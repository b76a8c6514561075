"""What a schedule may hold, with field paths as the API reports them. The API's schemas check
the form first; these rules hold for any caller of the domain, and are the only judge of what a
form cannot tell (a cron's values, a time zone's existence, the job against its type)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from domain.commands import SubmitJob
from domain.errors import FieldError
from domain.job_types import Registry
from domain.schedules.clock import CATCH_UP, cron_problem, timezone_problem
from domain.schedules.model import MAX_INTERVAL_SECONDS, OVERLAP
from domain.services.validation import job_errors

ONE_CADENCE = "Give exactly one of cron and interval_seconds."
NO_RUN_AT = "A schedule sets when each run starts: leave run_at out of its job."
MAX_NAME = 200


def schedule_errors(
    registry: Registry, fields: Mapping[str, Any], *, creating: bool
) -> list[FieldError]:
    """Everything wrong with a new schedule's fields (``creating``) or a change's."""
    errors = _cadence_errors(fields, creating)
    if "name" in fields and not _text(fields["name"], MAX_NAME):
        errors.append(FieldError("name", f"A name of 1 to {MAX_NAME} characters."))
    for name, allowed in (("overlap", OVERLAP), ("catch_up", CATCH_UP)):
        if name in fields and fields[name] not in allowed:
            errors.append(FieldError(name, f"One of {', '.join(allowed)}."))
    if "enabled" in fields and not isinstance(fields["enabled"], bool):
        errors.append(FieldError("enabled", "true or false."))
    if "job" in fields:
        errors.extend(scheduled_job_errors(registry, fields["job"]))
    return errors


def scheduled_job_errors(registry: Registry, command: SubmitJob) -> list[FieldError]:
    """The job checked as ``POST /v1/jobs`` checks it, less the time it runs at."""
    errors = job_errors(registry, command, "job.")
    if command.run_at is not None:
        errors.append(FieldError("job.run_at", NO_RUN_AT))
    return errors


def _cadence_errors(fields: Mapping[str, Any], creating: bool) -> list[FieldError]:
    given = [name for name in ("cron", "interval_seconds") if fields.get(name) is not None]
    if len(given) > 1 or (creating and not given):
        return [FieldError(name, ONE_CADENCE) for name in ("cron", "interval_seconds")]
    errors = []
    cron, interval = fields.get("cron"), fields.get("interval_seconds")
    if cron is not None:
        problem = cron_problem(cron) if _text(cron, 200) else "expected text"
        if problem:
            errors.append(FieldError("cron", f"Not a cron expression: {_sentence(problem)}"))
    if interval is not None and not _in_range(interval):
        errors.append(FieldError("interval_seconds", f"1 to {MAX_INTERVAL_SECONDS:,} seconds."))
    if "timezone" in fields:
        zone = fields["timezone"]
        problem = timezone_problem(zone) if _text(zone, 64) else "expected an IANA name"
        if problem:
            errors.append(FieldError("timezone", f"{problem[0].upper()}{problem[1:]}."))
    return errors


def _in_range(value: Any) -> bool:
    return (
        isinstance(value, int)
        and not isinstance(value, bool)
        and 1 <= value <= MAX_INTERVAL_SECONDS
    )


def _text(value: Any, longest: int) -> bool:
    return isinstance(value, str) and 1 <= len(value) <= longest


def _sentence(problem: str) -> str:
    return f"{problem[0].lower()}{problem[1:]}."
