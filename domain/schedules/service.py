"""Schedules as a tenant's admin manages them: create, read, change, delete; audited, and at most
``MAX_SCHEDULES`` a tenant. Their firing is ``domain.schedules.firing``'s."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy.exc import IntegrityError

from domain import audit
from domain.auth import Principal
from domain.commands import SubmitJob
from domain.errors import Conflict, NotFound, ValidationFailed
from domain.ids import looks_like, new_id
from domain.job_types import Registry
from domain.pagination import Page, decode_cursor, paginate
from domain.schedules.model import MAX_SCHEDULES, Schedule
from domain.schedules.repository import ScheduleRepository
from domain.schedules.rules import schedule_errors
from domain.secrets import SecretBox
from domain.services.jobs import sealed_payload
from domain.unit_of_work import UnitOfWork

DEFAULTS = {"timezone": "UTC", "enabled": True, "overlap": "allow", "catch_up": "one"}


class ScheduleService:
    def __init__(
        self,
        uow: Callable[[], UnitOfWork],
        registry: Registry,
        box: SecretBox | None,
        reads: Callable[[], UnitOfWork] | None = None,
    ) -> None:
        self._uow = uow
        self._reads = reads or uow
        self._registry = registry
        self._box = box  # seals the secret fields of a schedule's job, as a submit does

    def create(self, principal: Principal, fields: dict[str, Any]) -> Schedule:
        """A new schedule, due at its first slot (``fields["job"]`` is a ``SubmitJob``)."""
        fields = {"cron": None, "interval_seconds": None, **DEFAULTS, **fields}
        values = self._checked(fields, creating=True)
        with self._uow() as uow:
            repository = ScheduleRepository(uow.session)
            if repository.count_locked(principal.tenant_id) >= MAX_SCHEDULES:
                raise Conflict(f"A tenant may have at most {MAX_SCHEDULES:,} schedules.")
            _check_name(repository, principal.tenant_id, fields["name"])
            now = uow.now()
            schedule = Schedule(id=new_id("sch"), tenant_id=principal.tenant_id, created_at=now)
            schedule.change(values, now)  # every field, from none: anchored now, and due
            uow.add(schedule)
            audit.record(
                uow,
                principal.tenant_id,
                "schedule.create",
                "schedule",
                schedule.id,
                name=schedule.name,
            )
            _commit(uow, schedule.name)
            return schedule

    def list(self, principal: Principal, limit: int, cursor: str | None) -> Page[Schedule]:
        before = decode_cursor(cursor, "sch") if cursor else None
        with self._reads() as uow:
            rows = ScheduleRepository(uow.session).page(principal.tenant_id, before, limit + 1)
            return paginate(rows, limit)

    def get(self, principal: Principal, schedule_id: str) -> Schedule:
        with self._reads() as uow:
            return _find(ScheduleRepository(uow.session), principal, schedule_id)

    def update(self, principal: Principal, schedule_id: str, fields: dict[str, Any]) -> Schedule:
        """Change a schedule (locked meanwhile: a scheduler firing it waits, or skips it)."""
        values = self._checked(fields, creating=False)
        with self._uow() as uow:
            repository = ScheduleRepository(uow.session)
            schedule = _find(repository, principal, schedule_id, lock=True)
            if "name" in fields and fields["name"] != schedule.name:
                repository.count_locked(principal.tenant_id)  # as a creation would
                _check_name(repository, principal.tenant_id, fields["name"])
            schedule.change(values, uow.now())
            audit.record(
                uow,
                principal.tenant_id,
                "schedule.update",
                "schedule",
                schedule.id,
                changed=sorted(fields),
            )
            _commit(uow, schedule.name)
            return schedule

    def delete(self, principal: Principal, schedule_id: str) -> None:
        """Delete a schedule and its slots; the jobs it fired stay."""
        with self._uow() as uow:
            repository = ScheduleRepository(uow.session)
            uow.session.delete(_find(repository, principal, schedule_id, lock=True))
            audit.record(uow, principal.tenant_id, "schedule.delete", "schedule", schedule_id)
            uow.commit()

    def _checked(self, fields: dict[str, Any], *, creating: bool) -> dict[str, Any]:
        """The fields as stored: checked, and the job as its body with secrets sealed."""
        errors = schedule_errors(self._registry, fields, creating=creating)
        if errors:
            raise ValidationFailed(errors)
        if "job" not in fields:
            return dict(fields)
        job, sealed = self._stored_job(fields["job"])
        return {**fields, "job": job, "sealed": sealed}

    def _stored_job(self, command: SubmitJob) -> tuple[dict[str, Any], str | None]:
        payload, sealed = sealed_payload(
            self._registry.get(command.type), command.payload, self._box
        )
        body = {
            "type": command.type,
            "payload": payload,
            "priority": command.priority,
            "max_attempts": command.max_attempts,
            "timeout_seconds": command.timeout_seconds,
            "metadata": dict(command.metadata),
        }
        return body, sealed


def _find(
    repository: ScheduleRepository, principal: Principal, schedule_id: str, lock: bool = False
) -> Schedule:
    found = None
    if looks_like("sch", schedule_id):
        found = repository.get(principal.tenant_id, schedule_id, lock=lock)
    if found is None:
        raise NotFound(f"no schedule {schedule_id}")
    return found


def _check_name(repository: ScheduleRepository, tenant_id: str, name: str) -> None:
    if repository.named(tenant_id, name) is not None:
        raise _name_taken(name)


def _name_taken(name: str) -> Conflict:
    return Conflict(f"A schedule named {name!r} exists already; names are unique.")


def _commit(uow: UnitOfWork, name: str) -> None:
    """Commit; a name taken meanwhile (the unique key) is the same 409 as one taken before."""
    try:
        uow.commit()
    except IntegrityError as exc:
        if "name" not in str(exc.orig):
            raise
        raise _name_taken(name) from None
