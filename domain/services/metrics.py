"""What operators watch to size worker pools: queue depth and age, running jobs, pending
deliveries. Read from the database (the source of truth) when scraped."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Row, func, select

from domain import queues as queue_names
from domain.model import Job
from domain.ports import QueueConsumers
from domain.unit_of_work import UnitOfWork
from domain.webhooks.model import Delivery


@dataclass(frozen=True)
class QueueFigures:
    queue: str
    queued: int
    running: int
    oldest_queued_seconds: float


@dataclass(frozen=True)
class StarvedQueue:
    """A queue with due work that no worker consumes."""

    queue: str
    due: int


class MetricsService:
    def __init__(self, uow: Callable[[], UnitOfWork]) -> None:
        self._uow = uow

    def queues(self) -> list[QueueFigures]:
        """Per queue: jobs due and waiting, jobs running, and how long the oldest due one has
        waited (ix_jobs_due and ix_jobs_lease serve these)."""
        with self._uow() as uow:
            now = uow.now()
            waiting = _waiting(uow, now)
            running = dict(
                uow.session.execute(
                    select(Job.queue, func.count())
                    .where(Job.status == "running")
                    .group_by(Job.queue)
                ).all()
            )
        figures = {
            q: QueueFigures(q, n, running.get(q, 0), _age(now, oldest)) for q, n, oldest in waiting
        }
        for queue, count in running.items():
            figures.setdefault(queue, QueueFigures(queue, 0, count, 0.0))
        return sorted(figures.values(), key=lambda f: f.queue)

    def starved_queues(self, consumers: QueueConsumers) -> list[StarvedQueue]:
        """Queues with due work (jobs, or webhook deliveries) and no consumer, as far as the
        broker can tell. The broker is asked only when something is due."""
        due = self._due_work()
        counts = consumers.consumers(sorted(due)) if due else None
        if counts is None:
            return []
        return [StarvedQueue(q, n) for q, n in sorted(due.items()) if counts.get(q, 0) == 0]

    def _due_work(self) -> dict[str, int]:
        with self._uow() as uow:
            now = uow.now()
            due = {queue: count for queue, count, _oldest in _waiting(uow, now)}
            deliveries = uow.session.scalar(
                select(func.count()).where(
                    Delivery.status == "pending", Delivery.next_attempt_at <= now
                )
            )
        if deliveries:
            due[queue_names.WEBHOOKS] = int(deliveries)
        return due

    def pending_deliveries(self) -> int:
        with self._uow() as uow:
            return int(
                uow.session.scalar(select(func.count()).where(Delivery.status == "pending")) or 0
            )


def _waiting(uow: UnitOfWork, now: datetime) -> Sequence[Row[tuple[str, int, datetime]]]:
    """Per queue: how many jobs are due and waiting, and since when the oldest."""
    return uow.session.execute(
        select(Job.queue, func.count(), func.min(Job.run_at))
        .where(Job.status == "queued", Job.run_at <= now)
        .group_by(Job.queue)
    ).all()


def _age(now: object, oldest: object) -> float:
    if oldest is None:
        return 0.0
    return max(0.0, (now - oldest).total_seconds())  # type: ignore[operator]
