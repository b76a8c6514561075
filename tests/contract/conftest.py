"""A running Hopper for the contract tests: gunicorn, the job and webhook workers and the
scheduler on the real services, one tenant with a key per role, and one resource of each kind
(jobs that finished, a webhook endpoint, a delivery that reached its receiver, an API key). The
job worker stops once the seeded jobs have finished."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from _pytest.nodeid import coerce_node_id
from _pytest.nodes import Node
from sqlalchemy import func, select, update

from domain.db import make_engine
from domain.model.job import ErrorType, Job, JobStatus, job_error
from domain.schedules.model import Schedule
from domain.settings import Settings
from tests.receiver import Receiver
from tests.services import real_env
from tests.stack import Stack

ROLES = ("reader", "submitter", "admin")
# Every request of these suites authenticates from 127.0.0.1; the per-address limit on failed
# authentications has tests of its own.
CONTRACT_ENV = {"HOPPER_RATE_LIMIT_AUTH_FAILURES": "100000/minute"}

if not hasattr(Node, "_nodeid"):
    # schemathesis 4.32's lazy schemas name each operation's subtest by setting `Node._nodeid`,
    # which pytest 9.2 keeps as `Node._id`.
    Node._nodeid = property(  # type: ignore[attr-defined]
        lambda node: node._id,
        lambda node, value: setattr(node, "_id", coerce_node_id(value)),
    )


class Tenant:
    """A tenant of the running stack, spoken to over HTTP with its own keys."""

    def __init__(self, stack: Stack, receiver: Receiver) -> None:
        self.stack = stack
        self.receiver = receiver
        made = stack.new_tenant()
        self.tenant_id = made["tenant_id"]
        self.keys = {role: made[role] for role in ROLES}

    def call(self, method: str, path: str, role: str, expect: int, **kwargs: Any) -> Any:
        answer = self.stack.request(method, path, self.keys[role], **kwargs)
        assert answer.status_code == expect, f"{method} {path}: {answer.status_code} {answer.text}"
        return answer.json() if answer.content else None

    def job(self, **fields: Any) -> str:
        body = {"type": "echo", "payload": {"message": "contract"}, **fields}
        return str(self.call("POST", "/v1/jobs", "submitter", 202, json=body)["id"])

    def queued_job(self) -> str:
        """A job that waits a day before it runs: it stays queued for any test."""
        later = (datetime.now(UTC) + timedelta(days=1)).isoformat()
        return self.job(run_at=later)

    def canceled_job(self) -> str:
        job_id = self.queued_job()
        self.call("POST", f"/v1/jobs/{job_id}/cancel", "submitter", 200)
        return job_id

    def finished_job(self, **fields: Any) -> str:
        job_id = self.job(**fields)
        self.stack.wait_for_job(job_id, self.keys["reader"])
        return job_id

    def endpoint(self, **fields: Any) -> str:
        body = {"url": self.receiver.url, "description": "contract", **fields}
        return str(self.call("POST", "/v1/webhook-endpoints", "admin", 201, json=body)["id"])

    def api_key(self) -> str:
        body = {"name": "contract", "role": "reader"}
        return str(self.call("POST", "/v1/api-keys", "admin", 201, json=body)["id"])

    def schedule(self) -> str:
        """A disabled schedule: nothing fires it."""
        body = {
            "name": f"contract-{uuid.uuid4().hex}",
            "cron": "0 0 1 1 *",
            "enabled": False,
            "job": {"type": "echo", "payload": {"message": "contract"}},
        }
        return str(self.call("POST", "/v1/schedules", "admin", 201, json=body)["id"])

    def both_limits(self) -> str:
        key = self.concurrency_key()
        self.call("PUT", f"/v1/rate-limits/{key}", "admin", 200, json={"rate": "5/second"})
        return key

    def concurrency_key(self) -> str:
        key = f"contract-{uuid.uuid4().hex}"
        self.call("PUT", f"/v1/concurrency-limits/{key}", "admin", 200, json={"limit": 2})
        return key

    def rate_key(self) -> str:
        key = f"contract-{uuid.uuid4().hex}"
        self.call("PUT", f"/v1/rate-limits/{key}", "admin", 200, json={"rate": "5/second"})
        return key

    def clean_up(self) -> None:
        """Leaves no work for the stacks of later tests: no endpoint (its deliveries go with it),
        no schedule that fires, and no job still to run. The generated batches leave thousands
        of queued jobs, and a cancel each over HTTP took half a minute; one statement cancels
        them as `Job.cancel` would (no job is running: the job worker has stopped)."""
        for endpoint_id in self._all("/v1/webhook-endpoints", "admin"):
            self.stack.request("DELETE", f"/v1/webhook-endpoints/{endpoint_id}", self.keys["admin"])
        engine = make_engine(Settings.from_env(real_env()))
        try:
            with engine.begin() as connection:
                # The generated schedules first (waiting out a pass that fires one), so that
                # the jobs they fired are among those canceled below.
                connection.execute(
                    update(Schedule)
                    .where(Schedule.tenant_id == self.tenant_id)
                    .values(enabled=False, next_run_at=None)
                )
                mine = Job.tenant_id == self.tenant_id
                connection.execute(
                    update(Job)
                    .where(mine, Job.status == JobStatus.QUEUED)
                    .values(
                        status=JobStatus.CANCELED,
                        error=job_error(ErrorType.CANCELED, "the job was canceled"),
                        finished_at=func.now(),
                    )
                )
                running = connection.execute(
                    select(Job.id).where(mine, Job.status == JobStatus.RUNNING)
                ).all()
        finally:
            engine.dispose()
        assert running == [], f"jobs still running: {running}\n{self.stack.logs()}"

    def _all(self, listing: str, role: str, **filters: str) -> list[str]:
        ids: list[str] = []
        params: dict[str, Any] = {"limit": 100, **filters}
        while True:
            page = self.call("GET", listing, role, 200, params=params)
            ids += [item["id"] for item in page["data"]]
            if not page["next_cursor"]:
                return ids
            params["cursor"] = page["next_cursor"]

    def delivered(self, endpoint_id: str, timeout: float = 60) -> str:
        """Sends a test event to the endpoint; the id of its delivery once it has arrived."""
        self.call("POST", f"/v1/webhook-endpoints/{endpoint_id}/test", "admin", 202)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            page = self.call("GET", f"/v1/webhook-endpoints/{endpoint_id}/deliveries", "admin", 200)
            done = [d for d in page["data"] if d["status"] == "succeeded"]
            if done:
                return str(done[0]["id"])
            time.sleep(0.1)
        raise AssertionError(f"no delivery succeeded in {timeout}s\n{self.stack.logs()}")


@dataclass(frozen=True)
class Seeds:
    """Real ids of the tenant to put in paths. The jobs have finished, so that `?wait=` never
    holds a request."""

    job_id: tuple[str, ...]
    endpoint_id: tuple[str, ...]
    delivery_id: tuple[str, ...]
    key_id: tuple[str, ...]
    schedule_id: tuple[str, ...]
    key: tuple[str, ...]  # a key with both a concurrency limit and a rate

    def for_parameter(self, name: str) -> tuple[str, ...]:
        values: tuple[str, ...] = getattr(self, name, ())
        return values


@dataclass
class Contract:
    stack: Stack
    receiver: Receiver
    tenant: Tenant
    seeds: Seeds


@pytest.fixture(scope="module")
def contract(
    migrated_database: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Contract]:
    receiver = Receiver()
    stack = Stack(real_env(**CONTRACT_ENV), tmp_path_factory.mktemp("contract"))
    try:
        stack.web()
        job_worker = stack.worker()
        stack.worker(queues="webhooks")
        stack.scheduler()
        tenant = Tenant(stack, receiver)
        endpoint_id = tenant.endpoint()
        seeds = Seeds(
            job_id=(
                tenant.finished_job(),
                tenant.finished_job(type="fail", payload={"message": "contract"}, max_attempts=1),
            ),
            endpoint_id=(endpoint_id,),
            delivery_id=(tenant.delivered(endpoint_id),),
            key_id=(tenant.api_key(),),
            schedule_id=(tenant.schedule(),),
            key=(tenant.both_limits(),),
        )
        # The seeds have run; the jobs that generated requests submit (a `stubborn` one may ask
        # for an hour that no cancel shortens) stay queued, and `clean_up` cancels them.
        job_worker.stop()
        yield Contract(stack, receiver, tenant, seeds)
        tenant.clean_up()
    finally:
        stack.stop()
        receiver.close()
