"""Celery tasks: thin, like views. Fixed names, ids only, and the domain decides the rest."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import structlog
from celery import Celery

from domain import queues
from workers.delivery import DeliveryRunner
from workers.runner import JobRunner


def register_tasks(
    app: Celery, jobs: Callable[[], JobRunner], deliveries: Callable[[], DeliveryRunner]
) -> None:
    """``jobs`` and ``deliveries`` give this process's runners, built after the pool forks."""

    @app.task(name=queues.RUN_JOB_TASK, ignore_result=True, acks_late=False)
    def run_job(job_id: str, request_id: str | None = None) -> None:
        with log_context(job_id=job_id, request_id=request_id):
            jobs().run(job_id)

    @app.task(name=queues.DELIVER_WEBHOOK_TASK, ignore_result=True, acks_late=False)
    def deliver_webhook(delivery_id: str, request_id: str | None = None) -> None:
        with log_context(delivery_id=delivery_id, request_id=request_id):
            deliveries().run(delivery_id)


@contextlib.contextmanager
def log_context(**ids: str | None) -> Iterator[None]:
    """Every line logged while a task runs carries its ids (the request that caused it among
    them); nothing is left behind for the next task on this thread."""
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(
        **{name: value for name, value in ids.items() if value is not None}
    )
    try:
        yield
    finally:
        structlog.contextvars.clear_contextvars()
