"""What operators watch to size worker pools, read from the database (the source of truth) when
scraped: per queue, jobs waiting by reason and running, the oldest due job's age, the tenants a
queue is paused for; and the webhook deliveries pending. One statement a scrape, and the answer
is kept for ``CACHE_SECONDS``, so that several scrapers cost the database one read."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import CompoundSelect, String, func, literal_column, select, union_all
from sqlalchemy.sql.elements import ColumnElement

from domain import queues as queue_names
from domain.dispatch.waiting import WaitingRules
from domain.ports import QueueConsumers
from domain.queue_control.model import QueuePause
from domain.queue_control.repository import figures_statement
from domain.queue_control.service import QueueView, queue_views
from domain.unit_of_work import UnitOfWork
from domain.webhooks.model import Delivery

CACHE_SECONDS = 5.0


@dataclass(frozen=True)
class Gauges:
    queues: list[QueueView]
    pauses: dict[str, int]  # per queue, how many tenants (or ``*``) it is paused for
    pending_deliveries: int


@dataclass(frozen=True)
class StarvedQueue:
    """A queue with due work that no worker consumes."""

    queue: str
    due: int


class MetricsService:
    def __init__(
        self,
        reads: Callable[[], UnitOfWork],
        queues: Callable[[], Iterable[str]],
        rules: WaitingRules | None = None,
    ) -> None:
        self._reads = reads
        self._queues = queues
        self._rules = rules or WaitingRules()
        self._lock = threading.Lock()
        self._cached: tuple[float, Gauges] | None = None

    def gauges(self) -> Gauges:
        """The figures, at most ``CACHE_SECONDS`` old."""
        with self._lock:
            if self._cached is None or time.monotonic() - self._cached[0] > CACHE_SECONDS:
                self._cached = (time.monotonic(), self._read())
            return self._cached[1]

    def _read(self) -> Gauges:
        with self._reads() as uow:
            now = uow.now()
            rows = uow.session.execute(_one_statement(now, self._rules)).all()
        jobs = [row for row in rows if row[0] == "jobs"]
        views = queue_views(self._queues(), [row[1:] for row in jobs], now)
        pauses = {row[1]: row[3] for row in rows if row[0] == "pauses"}
        pending = sum(row[3] for row in rows if row[0] == "deliveries")
        return Gauges(sorted(views.values(), key=lambda v: v.queue), pauses, pending)

    def starved_queues(self, consumers: QueueConsumers) -> list[StarvedQueue]:
        """Queues with due work (jobs, or webhook deliveries) and no consumer, as far as the
        broker can tell. The broker is asked only when something is due."""
        due = self._due_work()
        counts = consumers.consumers(sorted(due)) if due else None
        if counts is None:
            return []
        return [StarvedQueue(q, n) for q, n in sorted(due.items()) if counts.get(q, 0) == 0]

    def _due_work(self) -> dict[str, int]:
        with self._reads() as uow:
            now = uow.now()
            rows = uow.session.execute(figures_statement(now, None, self._rules)).all()
            deliveries = uow.session.scalar(
                select(func.count()).where(
                    Delivery.status == "pending", Delivery.next_attempt_at <= now
                )
            )
        due = {queue: count for queue, reason, count, _oldest in rows if reason == "capacity"}
        if deliveries:
            due[queue_names.WEBHOOKS] = int(deliveries)
        return due


def _one_statement(now: datetime, rules: WaitingRules) -> CompoundSelect:
    """The jobs' figures, the pauses per queue and the pending deliveries, as one result of
    (part, queue, reason, count, oldest)."""
    jobs = figures_statement(now, None, rules).subquery()
    nothing = literal_column("NULL")
    return union_all(
        select(_text("jobs"), jobs.c.queue, jobs.c.reason, jobs.c.count, jobs.c.oldest),
        select(_text("pauses"), QueuePause.queue, _text(""), func.count(), nothing).group_by(
            QueuePause.queue
        ),
        select(_text("deliveries"), _text(""), _text(""), func.count(), nothing).where(
            Delivery.status == "pending"
        ),
    )


def _text(value: str) -> ColumnElement[str]:
    """One of this module's constant words, written into the statement (a bound parameter has
    no type a UNION can settle). Never anything from outside: it is not quoted."""
    if not (value == "" or value.isidentifier()):
        raise ValueError(f"not a constant word: {value!r}")
    return literal_column(f"'{value}'", String)
