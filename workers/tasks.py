"""Celery tasks: thin, like views. Fixed names, ids only, and the domain decides the rest."""

from __future__ import annotations

from collections.abc import Callable

import structlog
from celery import Celery

from domain import queues
from workers.runner import JobRunner


def register_tasks(app: Celery, runner: Callable[[], JobRunner]) -> None:
    """``runner`` gives this process's job runner; it is built after the pool forks."""

    @app.task(name=queues.RUN_JOB_TASK, ignore_result=True, acks_late=False)
    def run_job(job_id: str, request_id: str | None = None) -> None:
        with structlog.contextvars.bound_contextvars(job_id=job_id, request_id=request_id):
            runner().run(job_id)
