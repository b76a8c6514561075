"""The worker's side against real PostgreSQL and RabbitMQ: what goes on the wire, and the claim
and finish guards under real concurrency."""

from __future__ import annotations

import json
import threading
import time

from kombu import Connection

from domain.auth import Principal
from domain.commands import SubmitJob
from domain.model import Role
from domain.model.job import ErrorType
from hopper.bootstrap import Container
from tests.factories import TenantKeys, dispatch_now
from tests.services import BROKER_URL
from workers.runner import JobRunner


def submit(container: Container, tenant: TenantKeys, job_type: str = "echo", **fields):
    who = Principal(tenant.tenant_id, "key_test", Role.SUBMITTER)
    payload = fields.pop("payload", {"message": "x"})
    (job,) = container.jobs.submit(who, [SubmitJob(type=job_type, payload=payload, **fields)])
    return who, job


def test_a_published_command_is_persistent_prioritised_and_carries_ids_only(
    container: Container, tenant: TenantKeys
) -> None:
    _, job = submit(container, tenant, priority="high")
    assert dispatch_now(container, "default") >= 1
    with Connection(BROKER_URL) as connection:
        channel = connection.default_channel
        found = None
        # No worker consumes here; unacknowledged messages go back to the queue on close.
        for _ in range(10_000):
            message = channel.basic_get("default", no_ack=False)
            if message is None:
                break
            if json.loads(message.body)[0] == [job.id]:
                found = message
                channel.basic_ack(message.delivery_tag)
                break
        assert found is not None, "the command did not reach the default queue"
        body = json.loads(found.body)
        assert body[0] == [job.id]
        assert set(body[1]) == {"request_id"}
        assert found.properties["priority"] == 9
        assert found.properties["delivery_mode"] == 2
        assert found.properties["application_headers"]["task"] == "hopper.run_job"
        assert found.properties["application_headers"]["eta"] is None
        # Re-declaring a durable queue succeeds only with the arguments it already has.
        channel.queue_declare(
            "default", durable=True, auto_delete=False, arguments={"x-max-priority": 9}
        )


def test_of_many_racing_claims_exactly_one_wins(container: Container, tenant: TenantKeys) -> None:
    _, job = submit(container, tenant)
    claims = []
    barrier = threading.Barrier(8)

    def claim() -> None:
        barrier.wait()
        claims.append(container.execution.claim(job.id, "racer"))

    threads = [threading.Thread(target=claim) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    winners = [c for c in claims if c is not None]
    assert len(winners) == 1
    who = Principal(tenant.tenant_id, "key_test", Role.READER)
    assert [a.number for a in container.jobs.attempts(who, job.id)] == [1]


def test_a_late_write_from_a_lost_attempt_is_refused(
    container: Container, tenant: TenantKeys
) -> None:
    who, job = submit(container, tenant)
    first = container.execution.claim(job.id, "first")
    assert first is not None
    # The first run's attempt ends (as the scheduler does when its lease lapses); a second runs.
    container.execution.fail(first, ErrorType.WORKER_LOST, "gone")
    with container.uow() as uow:  # make it due again at once, as a retry with no backoff
        row = uow.jobs.get_unscoped(job.id)
        row.run_at = uow.now()
        uow.commit()
    second = container.execution.claim(job.id, "second")
    assert second is not None and second.attempt == 2
    assert container.execution.succeed(first, {"message": "late"}) is None
    finished = container.execution.succeed(second, {"message": "x"})
    assert finished is not None and finished.status == "succeeded"
    assert container.jobs.get(who, job.id).result == {"message": "x"}


def test_the_runner_records_a_cancel_requested_while_running(
    container: Container, tenant: TenantKeys
) -> None:
    who, job = submit(container, tenant, "sleep", payload={"seconds": 30})
    runner = JobRunner(container.execution, container.registry)
    thread = threading.Thread(target=runner.run, args=(job.id,))
    thread.start()
    for _ in range(100):
        if container.jobs.get(who, job.id).status == "running":
            break
        time.sleep(0.05)
    assert container.jobs.cancel(who, job.id).cancel_requested
    thread.join(timeout=15)
    assert not thread.is_alive()
    done = container.jobs.get(who, job.id)
    assert done.status == "canceled"
    assert done.error == {"type": "canceled", "message": "the job was canceled"}
