"""Queue controls: what waits in each queue and why, pausing and resuming a queue (for one tenant
through the API, for every tenant from ``hopper queues``), and the figures ``/metrics`` shows."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from domain import audit
from domain.dispatch.waiting import WaitingRules
from domain.errors import NotFound
from domain.ports import Dispatch
from domain.queue_control.model import EVERY_TENANT
from domain.queue_control.repository import QueueRepository
from domain.queues import WAITING_REASONS
from domain.unit_of_work import UnitOfWork


@dataclass
class QueueView:
    queue: str
    waiting: dict[str, int] = field(default_factory=lambda: dict.fromkeys(WAITING_REASONS, 0))
    running: int = 0
    oldest_due_seconds: float = 0.0
    paused: bool = False
    paused_for_every_tenant: bool = False


class QueueService:
    def __init__(
        self,
        uow: Callable[[], UnitOfWork],
        reads: Callable[[], UnitOfWork],
        queues: Callable[[], Iterable[str]],
        rules: WaitingRules | None = None,
    ) -> None:
        self._uow = uow
        self._reads = reads
        self._queues = queues
        self._rules = rules or WaitingRules()

    def overview(self, tenant_id: str | None) -> list[QueueView]:
        """Every job queue, for one tenant (or for every tenant, with None)."""
        with self._reads() as uow:
            now = uow.now()
            repository = QueueRepository(uow.session)
            figures = repository.figures(now, tenant_id, self._rules)
            views = queue_views(self._queues(), figures, now)
            for pause in repository.pauses(tenant_id):
                view = views.setdefault(pause.queue, QueueView(pause.queue))
                view.paused = True
                view.paused_for_every_tenant |= pause.tenant_id == EVERY_TENANT
        return sorted(views.values(), key=lambda v: v.queue)

    def paused_tenants(self) -> dict[str, list[str]]:
        """Per queue, the tenants it is paused for (``*``: every tenant)."""
        with self._reads() as uow:
            found: dict[str, list[str]] = {}
            for pause in QueueRepository(uow.session).pauses(None):
                found.setdefault(pause.queue, []).append(pause.tenant_id)
            return found

    def runs_by_worker(self) -> dict[str, list[str]]:
        """Per worker process (``host:pid``), the jobs it runs now, as ``job_id (type)``."""
        with self._reads() as uow:
            found: dict[str, list[str]] = {}
            for worker, job_id, job_type in QueueRepository(uow.session).runs():
                found.setdefault(worker or "unknown", []).append(f"{job_id} ({job_type})")
            return found

    def pause(self, tenant_id: str, queue: str) -> QueueView:
        return self._change(tenant_id, queue, paused=True)

    def resume(self, tenant_id: str, queue: str) -> QueueView:
        return self._change(tenant_id, queue, paused=False)

    def pause_everywhere(self, queue: str) -> bool:
        return self._set(EVERY_TENANT, queue, paused=True)

    def resume_everywhere(self, queue: str) -> bool:
        return self._set(EVERY_TENANT, queue, paused=False)

    def _change(self, tenant_id: str, queue: str, paused: bool) -> QueueView:
        self._set(tenant_id, queue, paused)
        return next(v for v in self.overview(tenant_id) if v.queue == queue)

    def _set(self, tenant_id: str, queue: str, paused: bool) -> bool:
        """Pause or resume, audited in the tenant's log when it changes something."""
        if queue not in set(self._queues()):
            raise NotFound(f"no queue {queue}")
        with self._uow() as uow:
            repository = QueueRepository(uow.session)
            if paused:
                changed = repository.pause(queue, tenant_id, uow.now())
            else:
                changed = repository.resume(queue, tenant_id)
            if changed and tenant_id != EVERY_TENANT:
                action = "queue.pause" if paused else "queue.resume"
                audit.record(uow, tenant_id, action, "queue", queue)
            if changed:
                uow.publish_after_commit(Dispatch(queue))
            uow.commit()
            return changed


def queue_views(
    queues: Iterable[str], figures: Sequence[tuple[str, str, int, datetime]], now: datetime
) -> dict[str, QueueView]:
    views = {queue: QueueView(queue) for queue in queues}
    for queue, reason, count, oldest in figures:
        view = views.setdefault(queue, QueueView(queue))
        if reason == "running":
            view.running = count
            continue
        view.waiting[reason] = count
        if reason == "capacity" and oldest is not None:
            view.oldest_due_seconds = max(0.0, (now - oldest).total_seconds())
    return views
