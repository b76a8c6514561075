"""The jobs resource: submit, read (with ETags), list, attempts, cancel, retry."""

from __future__ import annotations

from typing import Any

from flask import Response, current_app, g, request
from flask.views import MethodView
from werkzeug.routing import BaseConverter

from api.auth import principal, requires
from api.jobs.schemas import (
    AttemptListSchema,
    AttemptSchema,
    JobBatchResultSchema,
    JobBatchSchema,
    JobCreateSchema,
    JobGetQuery,
    JobListQuery,
    JobPageSchema,
    JobSchema,
)
from api.json_body import HopperBlueprint
from api.links import link
from api.meta.instruments import count_submitted
from api.pagination import LINK_HEADER, add_link, page_body
from api.responses import json_response
from domain.commands import SubmitJob
from domain.errors import NotFound
from domain.ids import looks_like
from domain.model import Job, Role
from domain.repositories import JobFilter
from domain.representation import job_body

blp = HopperBlueprint(
    "jobs", __name__, url_prefix="/v1/jobs", description="Submit and follow jobs."
)
_attempts = AttemptSchema()
_jobs = JobSchema()
POLL_AGAIN_SECONDS = "1"
LOCATION = {"Location": {"required": True, "schema": {"type": "string"}}}
ETAG = {"ETag": {"required": True, "schema": {"type": "string"}}}
POLL_AGAIN = {
    "Retry-After": {
        "description": "While the job is unfinished, seconds to wait before polling again; "
        "never less than the seconds until the rate-limit window resets.",
        "schema": {"type": "integer", "minimum": 0},
    }
}


class JobIdConverter(BaseConverter):
    """A job id in a path: any segment but `batch`, so that `/v1/jobs/batch` is the batch
    resource alone (a GET there is a 405 that names POST, not a lookup of a job called batch).
    An id of the wrong form is a 404 from `_job_id`, after authentication."""

    regex = "(?!batch$)[^/]+"


def job_id_parameter(_converter: BaseConverter) -> dict[str, Any]:
    return {"type": "string", "not": {"enum": ["batch"]}}


def _service() -> Any:
    return current_app.extensions["hopper"].jobs


def _job_id(job_id: str) -> str:
    if not looks_like("job", job_id):
        raise NotFound(f"no job {job_id}")
    return job_id


def submit_command(body: dict[str, Any]) -> SubmitJob:
    """A loaded job body as the command that submits it (a schedule's `job` too)."""
    return SubmitJob(**body)


def _job_response(job: Job, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return json_response(job_body(job), status, headers)


@blp.route("")
class JobCollection(MethodView):
    @requires(Role.SUBMITTER)
    @blp.arguments(JobCreateSchema)
    @blp.response(202, JobSchema, headers=LOCATION)
    def post(self, body: dict[str, Any]) -> Response:
        """Submit a job"""
        (job,) = _service().submit(principal(), [submit_command(body)], g.request_id)
        count_submitted([job])
        return _job_response(job, 202, {"Location": link(f"/v1/jobs/{job.id}")})

    @requires(Role.READER)
    @blp.arguments(JobListQuery, location="query")
    @blp.response(200, JobPageSchema, headers=LINK_HEADER)
    def get(self, query: dict[str, Any]) -> Response:
        """List jobs, newest first"""
        filters = JobFilter(
            status=query["status"],
            type=query["type"],
            created_after=query["created_after"],
            created_before=query["created_before"],
            schedule_id=query["schedule_id"],
        )
        page = _service().list(principal(), filters, query["limit"], query["cursor"])
        return add_link(json_response(page_body(page, _jobs)), page)


@blp.route("/batch")
class JobBatch(MethodView):
    @requires(Role.SUBMITTER)
    @blp.arguments(JobBatchSchema)
    @blp.response(202, JobBatchResultSchema)
    def post(self, body: dict[str, Any]) -> Response:
        """Submit up to 500 jobs at once: all are accepted or none is"""
        commands = [submit_command(item) for item in body["jobs"]]
        jobs = _service().submit(principal(), commands, g.request_id, batch=True)
        count_submitted(jobs)
        return json_response({"data": _jobs.dump(jobs, many=True)}, 202)


@blp.route("/<job_id:job_id>")
class JobItem(MethodView):
    @requires(Role.READER)
    @blp.arguments(JobGetQuery, location="query")
    @blp.response(200, JobSchema, headers={**ETAG, **POLL_AGAIN})
    @blp.alt_response(
        304, description="Not modified (If-None-Match matched the ETag)", headers=ETAG
    )
    def get(self, query: dict[str, Any], job_id: str) -> Response:
        """Get a job (ETag; `wait` long-polls until it finishes)"""
        job = _service().get(principal(), _job_id(job_id), wait=query["wait"])
        headers = {} if job.finished else {"Retry-After": POLL_AGAIN_SECONDS}
        response = _job_response(job, 200, headers)
        response.add_etag()
        return response.make_conditional(request)

    @requires(Role.SUBMITTER)
    @blp.response(204)
    def delete(self, job_id: str) -> Response:
        """Delete a finished job now: its payload, result, attempts and webhook events go"""
        _service().delete(principal(), _job_id(job_id))
        return Response(status=204)


@blp.route("/<job_id:job_id>/attempts")
class JobAttempts(MethodView):
    @requires(Role.READER)
    @blp.response(200, AttemptListSchema)
    def get(self, job_id: str) -> Response:
        """List a job's attempts, oldest first"""
        attempts = _service().attempts(principal(), _job_id(job_id))
        return json_response({"data": _attempts.dump(attempts, many=True)})


@blp.route("/<job_id:job_id>/cancel")
class JobCancel(MethodView):
    @requires(Role.SUBMITTER)
    @blp.response(200, JobSchema, description="The queued job is now canceled")
    @blp.alt_response(202, schema=JobSchema, description="The running job was asked to stop")
    def post(self, job_id: str) -> Response:
        """Cancel a job"""
        job = _service().cancel(principal(), _job_id(job_id))
        return _job_response(job, 202 if job.status == "running" else 200)


@blp.route("/<job_id:job_id>/retry")
class JobRetry(MethodView):
    @requires(Role.SUBMITTER)
    @blp.response(202, JobSchema)
    def post(self, job_id: str) -> Response:
        """Run a failed or canceled job again"""
        job = _service().retry(principal(), _job_id(job_id))
        return _job_response(job, 202)
