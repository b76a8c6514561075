"""What goes with a deleted job besides its own rows (``JobRepository.erase``): the stored
answers of idempotent requests that showed it. Their bodies are sealed, so the candidates are
opened and kept only if the job is in them: its submission's (a single job, or a batch: the
records whose request was in flight when the job was made) and those of requests on the job
itself (a retry's, a cancel's)."""

from __future__ import annotations

from sqlalchemy import and_, delete, or_, select, tuple_
from sqlalchemy.orm import Session

from domain.model import IdempotencyRecord, Job
from domain.secrets import SecretBox

SUBMITTING_ROUTES = ("/v1/jobs", "/v1/jobs/batch")


def forget_answers(session: Session, box: SecretBox | None, job: Job) -> int:
    """Delete those records; returns how many. A retry of such a request with its key runs
    again."""
    record = IdempotencyRecord
    on_the_job = record.route.startswith(f"/v1/jobs/{job.id}/", autoescape=True)
    submitting = and_(
        record.route.in_(SUBMITTING_ROUTES),
        record.created_at <= job.created_at,
        record.updated_at >= job.created_at,
    )
    candidates = session.scalars(
        select(record).where(record.tenant_id == job.tenant_id, or_(on_the_job, submitting))
    ).all()
    showing = [found for found in candidates if _shows(box, found, job.id)]
    if showing:
        keys = [(found.tenant_id, found.route, found.key) for found in showing]
        session.execute(
            delete(record).where(tuple_(record.tenant_id, record.route, record.key).in_(keys))
        )
    return len(showing)


def _shows(box: SecretBox | None, found: IdempotencyRecord, job_id: str) -> bool:
    if found.route.startswith(f"/v1/jobs/{job_id}/"):
        return True
    if found.response_body is None:
        return False  # no answer stored yet: it holds nothing of the job
    try:
        body = box.open(found.response_body) if box is not None else found.response_body
    except ValueError:  # sealed under a key since removed: it may hold the job; it goes
        return True
    return f'"{job_id}"' in body
