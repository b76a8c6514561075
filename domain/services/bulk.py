"""Bulk action on a tenant's jobs, for operators after a fix: retry the failed ones, or cancel
a flood. Each job moves through the same rule and audit record as through the API, in its own
short transaction, so a big selection never holds locks for long."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime

from domain.auth import Principal
from domain.errors import Conflict, FieldError, NotFound, ValidationFailed
from domain.model import Role
from domain.services.jobs import JobService
from domain.unit_of_work import UnitOfWork

ACTIONS = {"retry": ("failed", "canceled"), "cancel": ("queued", "running")}
_BATCH = 500


class BulkJobs:
    def __init__(self, reads: Callable[[], UnitOfWork], jobs: JobService) -> None:
        self._reads = reads
        self._jobs = jobs

    def apply(
        self,
        action: str,
        tenant_id: str,
        status: str,
        job_type: str | None = None,
        since: datetime | None = None,
    ) -> tuple[int, int]:
        """(moved, skipped): jobs that had moved on meanwhile are skipped, not an error."""
        if status not in ACTIONS[action]:
            allowed = " or ".join(ACTIONS[action])
            raise ValidationFailed([FieldError("status", f"{action} takes {allowed} jobs")])
        operator = Principal(tenant_id=tenant_id, key_id="operator", role=Role.ADMIN)
        move = self._jobs.retry if action == "retry" else self._jobs.cancel
        moved = skipped = 0
        for job_id in self._selected(tenant_id, status, job_type, since):
            try:
                move(operator, job_id)
                moved += 1
            except (Conflict, NotFound):  # moved on, or purged, since it was selected
                skipped += 1
        return moved, skipped

    def _selected(
        self, tenant_id: str, status: str, job_type: str | None, since: datetime | None
    ) -> Iterator[str]:
        """The selection's ids, oldest first, a batch at a time."""
        after: str | None = None
        while True:
            with self._reads() as uow:
                ids = uow.jobs.ids_with(tenant_id, status, job_type, since, after, _BATCH)
            yield from ids
            if len(ids) < _BATCH:
                return
            after = ids[-1]
