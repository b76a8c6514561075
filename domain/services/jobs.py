"""Client-facing job use cases: submit, read, list, cancel, retry. Every one is scoped to the
caller's tenant."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.orm.exc import StaleDataError

from domain import audit, sealed_fields
from domain.auth import Principal
from domain.commands import SubmitJob
from domain.dispatch.waiting import WaitingRules
from domain.errors import Conflict, IllegalTransition, NotFound, ValidationFailed
from domain.ids import new_id
from domain.job_types import JobType, Registry
from domain.model import Attempt, Job, JobStatus, Priority
from domain.pagination import Page, decode_cursor, paginate
from domain.ports import Dispatch, JobWaiter
from domain.quotas import QuotaCheck
from domain.repositories import JobFilter
from domain.secrets import SecretBox
from domain.services.dispatch import HARD_LIMIT_MARGIN_SECONDS
from domain.services.erasure import forget_answers
from domain.services.validation import job_errors
from domain.unit_of_work import UnitOfWork


class JobService:
    def __init__(
        self,
        uow: Callable[[], UnitOfWork],
        registry: Registry,
        waiter: JobWaiter,
        hard_limit_margin_seconds: float = HARD_LIMIT_MARGIN_SECONDS,
        reads: Callable[[], UnitOfWork] | None = None,
        box: SecretBox | None = None,
        quotas: QuotaCheck | None = None,
    ) -> None:
        self._quotas = quotas
        self._box = box  # seals a payload's secret fields (sealed_fields)
        self._uow = uow
        self._reads = reads or uow  # for reads alone: no transaction around one statement
        self._registry = registry
        self._rules = WaitingRules.of(registry)
        self._waiter = waiter
        self._hard_limit_margin = hard_limit_margin_seconds

    def submit(
        self,
        principal: Principal,
        commands: Sequence[SubmitJob],
        request_id: str | None = None,
        *,
        batch: bool = False,
    ) -> list[Job]:
        """Record the jobs durably (all or none), then ring for their queues' dispatchers."""
        errors = []
        for index, command in enumerate(commands):
            errors.extend(job_errors(self._registry, command, f"jobs.{index}." if batch else ""))
        if errors:
            raise ValidationFailed(errors)
        new = [self._new_job(principal, command, request_id) for command in commands]
        with self._uow() as uow:
            if self._quotas is not None:
                self._quotas.jobs(uow, principal.tenant_id, [job.payload for job in new])
            jobs = uow.jobs.insert(new, [command.run_at for command in commands])
            for queue in sorted({job.queue for job in jobs if job.run_at <= job.created_at}):
                uow.publish_after_commit(Dispatch(queue))  # a later job's time will come
            uow.commit()
            return jobs

    def get(self, principal: Principal, job_id: str, wait: float = 0) -> Job:
        """The job; with ``wait``, held until it finishes or ``wait`` seconds pass. The watch
        starts before the first read, so an end between the two is not missed."""
        if wait <= 0:
            return self._read(principal, job_id)
        deadline = time.monotonic() + wait
        with self._waiter.watch(job_id) as watch:
            while True:
                job = self._read(principal, job_id)
                remaining = deadline - time.monotonic()
                if job.finished or remaining <= 0 or watch is None:
                    return job
                watch.wait(remaining)

    def _read(self, principal: Principal, job_id: str) -> Job:
        with self._reads() as uow:
            job = uow.jobs.read(principal.tenant_id, job_id, self._rules)
            if job is None:
                raise NotFound(f"no job {job_id}")
            return job

    def list(
        self, principal: Principal, filters: JobFilter, limit: int, cursor: str | None
    ) -> Page[Job]:
        before = decode_cursor(cursor, "job") if cursor else None
        with self._reads() as uow:
            rows = uow.jobs.page(principal.tenant_id, filters, before, limit + 1, self._rules)
            return paginate(rows, limit)

    def attempts(self, principal: Principal, job_id: str) -> Sequence[Attempt]:
        with self._reads() as uow:
            self._find(uow, principal, job_id)
            return uow.jobs.attempts(job_id)

    def cancel(self, principal: Principal, job_id: str) -> Job:
        """Queued: canceled at once. Running: ``cancel_requested``, and the handler is told."""
        return self._transition(principal, job_id, lambda job, now: job.cancel(now), "job.cancel")

    def retry(self, principal: Principal, job_id: str) -> Job:
        return self._transition(principal, job_id, lambda job, now: job.retry(now), "job.retry")

    def delete(self, principal: Principal, job_id: str) -> None:
        """Delete a finished job now, with its attempts, events and stored answers (for a
        client that must not keep the data); audited."""
        with self._uow() as uow:
            job = uow.jobs.locked(principal.tenant_id, job_id)
            if job is None:
                raise NotFound(f"no job {job_id}")
            if not job.finished:
                raise IllegalTransition(
                    f"job {job_id} is {job.status}; only a finished job can be deleted"
                )
            forget_answers(uow.session, self._box, job)
            uow.jobs.erase(job.id)
            audit.record(uow, principal.tenant_id, "job.delete", "job", job.id, status=job.status)
            uow.commit()

    def _transition(
        self, principal: Principal, job_id: str, move: Callable[[Job, datetime], None], action: str
    ) -> Job:
        for _ in range(5):
            with self._uow() as uow:
                job = self._find(uow, principal, job_id)
                move(job, uow.now())
                audit.record(uow, principal.tenant_id, action, "job", job.id, status=job.status)
                if job.status == JobStatus.QUEUED:
                    uow.publish_after_commit(Dispatch(job.queue))
                try:
                    uow.commit()
                except StaleDataError:
                    continue  # someone moved the job meanwhile: look again
                return job
        raise Conflict(f"job {job_id} is changing too fast; try again")

    def _find(self, uow: UnitOfWork, principal: Principal, job_id: str) -> Job:
        job = uow.jobs.get(principal.tenant_id, job_id)
        if job is None:
            raise NotFound(f"no job {job_id}")
        return job

    def _new_job(self, principal: Principal, command: SubmitJob, request_id: str | None) -> Job:
        job_type = self._registry.get(command.type)
        payload, sealed = sealed_payload(job_type, command.payload, self._box)
        return new_job(
            job_type, principal.tenant_id, command, payload, sealed, request_id=request_id
        )


def sealed_payload(
    job_type: JobType, payload: Any, box: SecretBox | None
) -> tuple[Any, str | None]:
    """The payload to store and show, and its secret fields sealed (None when it has none)."""
    shown, secrets = sealed_fields.split(job_type, payload)
    if secrets is not None and box is None:
        raise RuntimeError(f"job type {job_type.name} has secret fields and no box seals them")
    return shown, sealed_fields.seal(box, secrets) if box else None


def new_job(
    job_type: JobType,
    tenant_id: str,
    command: SubmitJob,
    payload: Any,
    sealed: str | None,
    *,
    request_id: str | None = None,
    schedule_id: str | None = None,
) -> Job:
    """A job as submitted, or as a schedule fires it (``payload`` and ``sealed`` from
    ``sealed_payload``); its times are the database's (``JobRepository.insert``)."""
    return Job(
        id=new_id("job"),
        tenant_id=tenant_id,
        type=job_type.name,
        queue=job_type.queue,
        status=JobStatus.QUEUED,
        priority=command.priority or Priority.NORMAL,
        payload=payload,
        sealed=sealed,
        attempts=0,
        attempts_total=0,
        max_attempts=command.max_attempts or job_type.default_max_attempts,
        timeout_seconds=command.timeout_seconds or job_type.default_timeout_seconds,
        meta=dict(command.metadata),
        cancel_requested=False,
        request_id=request_id,
        schedule_id=schedule_id,
        concurrency_key=command.concurrency_key,
        rate_key=command.rate_key,
    )
