"""The scheduler's step for schedules: fire the slots that have come, each exactly once.

A pass takes the due schedules ``FOR UPDATE SKIP LOCKED``, so that several schedulers share
them without waiting on each other, and plans each (``clock.plan``). Each slot handled writes a
``schedule_runs`` row whose primary key is the schedule and the slot: should two schedulers
ever reach one slot, the second meets the key, that schedule's work is rolled back (a savepoint
of its own, so the rest of the batch stands) and it is read again at the next pass. Never a
second job. Jobs are built as a submitted one is (``new_job``) and dispatched as one is.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog
from sqlalchemy.exc import IntegrityError

from domain.commands import SubmitJob
from domain.job_types import Registry
from domain.model import Job
from domain.ports import Dispatch
from domain.schedules.clock import Plan, plan
from domain.schedules.model import FIRED, SKIPPED, Schedule, ScheduleRun
from domain.schedules.repository import ScheduleRepository
from domain.services.dispatch import HARD_LIMIT_MARGIN_SECONDS
from domain.services.jobs import new_job
from domain.unit_of_work import UnitOfWork

log = structlog.get_logger(__name__)

RETRY_UNPLANNABLE = timedelta(minutes=1)


@dataclass
class Fired:
    """What a pass did: jobs fired, slots skipped (``overlap: skip``), slots missed."""

    fired: int = 0
    skipped: int = 0
    missed: int = 0


class ScheduleFiring:
    def __init__(
        self,
        uow: Callable[[], UnitOfWork],
        registry: Registry,
        hard_limit_margin_seconds: float = HARD_LIMIT_MARGIN_SECONDS,
        keep_runs: timedelta = timedelta(days=30),
    ) -> None:
        self._uow = uow
        self._registry = registry
        self._hard_limit_margin = hard_limit_margin_seconds
        self._keep_runs = keep_runs  # as long as the jobs they fired (the jobs' retention)

    def fire_due(self, limit: int = 100) -> Fired:
        """One batch of due schedules, in one transaction."""
        done = Fired()
        with self._uow() as uow:
            now = uow.now()
            repository = ScheduleRepository(uow.session)
            for schedule in repository.due(now, limit):
                self._fire(uow, repository, schedule, now, done)
            uow.commit()
        if done.fired or done.skipped or done.missed:
            log.info("schedules_fired", fired=done.fired, skipped=done.skipped, missed=done.missed)
        return done

    def purge_runs(self, batch: int = 500) -> int:
        """Delete one small batch of slots older than the jobs' retention."""
        with self._uow() as uow:
            deleted = ScheduleRepository(uow.session).purge_runs(uow.now() - self._keep_runs, batch)
            uow.commit()
            return deleted

    def _fire(
        self,
        uow: UnitOfWork,
        repository: ScheduleRepository,
        schedule: Schedule,
        now: datetime,
        done: Fired,
    ) -> None:
        schedule_id, pending = schedule.id, schedule.next_run_at
        assert pending is not None  # due() takes only schedules with a next slot
        try:
            planned = plan(schedule.cadence(), pending, now, schedule.catch_up)
        except ValueError as exc:  # a time zone this host no longer knows, say
            log.warning("schedule_unplannable", schedule_id=schedule_id, error=str(exc))
            schedule.next_run_at = now + RETRY_UNPLANNABLE
            return
        try:
            with uow.session.begin_nested():
                jobs = self._handle(uow, repository, schedule, planned)
        except IntegrityError:
            log.info("schedule_slot_taken", schedule_id=schedule_id)  # by another scheduler
            return
        for queue in sorted({job.queue for job in jobs}):
            uow.publish_after_commit(Dispatch(queue))
        done.fired += len(jobs)
        done.skipped += len(planned.fire) - len(jobs)
        done.missed += planned.missed

    def _handle(
        self, uow: UnitOfWork, repository: ScheduleRepository, schedule: Schedule, planned: Plan
    ) -> list[Job]:
        """Fire or skip each planned slot, then move the schedule to its next one."""
        fired = []
        for slot in planned.fire:
            if self._skips(repository, schedule):
                uow.add(ScheduleRun(schedule_id=schedule.id, slot=slot, outcome=SKIPPED))
                continue
            job = self._job(schedule)
            uow.add(ScheduleRun(schedule_id=schedule.id, slot=slot, job_id=job.id, outcome=FIRED))
            uow.session.flush()  # the slot first: one another scheduler took fails here
            fired.extend(uow.jobs.insert([job], [None]))
            schedule.last_run_at, schedule.last_job_id = slot, job.id
        schedule.next_run_at = planned.next_pending
        uow.session.flush()
        return fired

    def _skips(self, repository: ScheduleRepository, schedule: Schedule) -> bool:
        if schedule.job["type"] not in self._registry:
            log.warning("schedule_job_type_unknown", schedule_id=schedule.id)
            return True
        return schedule.overlap == "skip" and repository.unfinished(schedule.last_job_id)

    def _job(self, schedule: Schedule) -> Job:
        command = SubmitJob(**schedule.job)
        return new_job(
            self._registry.get(command.type),
            schedule.tenant_id,
            command,
            schedule.job["payload"],
            schedule.sealed,
            schedule_id=schedule.id,
        )
