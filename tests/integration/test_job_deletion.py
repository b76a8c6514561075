"""`DELETE /v1/jobs/{id}` on real PostgreSQL: the submitter deletes a finished job, and nothing
of it is left in any table (a `pg_dump` of the whole database is read): its row, payload,
result, attempts, webhook events and deliveries, and the stored answers of the idempotent
requests that showed it. The audit log keeps what was done to it, and nothing of its data.
Unfinished jobs are refused with `409`, and another tenant's are not found."""

from __future__ import annotations

import uuid

from flask.testing import FlaskClient

from domain.model.job import ErrorType
from hopper.bootstrap import Container
from tests.factories import TenantKeys
from tests.services import pg_dump


def finished_job(
    client: FlaskClient,
    container: Container,
    tenant: TenantKeys,
    marker: str,
    fail: bool = False,
    **extra: str,
) -> dict:
    """An echo job run to its end by a worker's own steps: succeeded, or ``fail``ed."""
    headers = {**tenant.headers(), **extra}
    body = {"type": "echo", "payload": {"message": marker}, "metadata": {"note": marker}}
    job = client.post("/v1/jobs", json=body, headers=headers).get_json()
    claim = container.execution.claim(job["id"], "deletion-test")
    assert claim is not None
    if fail:
        container.execution.fail(claim, ErrorType.HANDLER_ERROR, f"failed {marker}", retry=False)
    else:
        assert container.execution.succeed(claim, {"message": marker}) is not None
    return job


def test_a_deleted_job_leaves_nothing_of_it_in_the_database(
    client: FlaskClient, container: Container, tenant: TenantKeys
) -> None:
    hook = client.post(
        "/v1/webhook-endpoints",
        json={"url": "http://127.0.0.1:9/hook", "enabled": True},
        headers=tenant.headers("admin"),
    )
    assert hook.status_code == 201
    marker = f"erase-me-{uuid.uuid4().hex}"
    job = finished_job(client, container, tenant, marker, fail=True, **{"Idempotency-Key": marker})
    kept = finished_job(client, container, tenant, f"keep-me-{uuid.uuid4().hex}")
    retried = client.post(
        f"/v1/jobs/{job['id']}/retry",
        headers={**tenant.headers(), "Idempotency-Key": f"retry-{marker}"},
    )
    assert retried.status_code == 202
    claim = container.execution.claim(job["id"], "deletion-test")  # attempt 2 succeeds too
    assert claim is not None and container.execution.succeed(claim, {"message": marker})
    before = pg_dump()
    assert before.count(marker) >= 4 and job["id"] in before  # there was something to erase

    answer = client.delete(f"/v1/jobs/{job['id']}", headers=tenant.headers())

    assert answer.status_code == 204, answer.get_json()
    assert client.get(f"/v1/jobs/{job['id']}", headers=tenant.headers()).status_code == 404
    dump = pg_dump()
    assert marker not in dump
    holding = rows_naming(dump, job["id"])
    assert set(holding) == {"audit_events"}, holding  # what was done to it, and no data
    assert sorted(
        action for row in holding["audit_events"] for action in ACTIONS if action in row
    ) == [
        "job.delete",
        "job.retry",
    ]
    assert kept["id"] in dump  # only that job went
    again = client.get(f"/v1/jobs/{kept['id']}", headers=tenant.headers())
    assert again.status_code == 200


def test_an_unfinished_job_is_not_deleted_and_another_tenants_is_not_found(
    client: FlaskClient, container: Container, tenant: TenantKeys, other_tenant: TenantKeys
) -> None:
    queued = client.post(
        "/v1/jobs", json={"type": "echo", "payload": {"message": "x"}}, headers=tenant.headers()
    ).get_json()
    refused = client.delete(f"/v1/jobs/{queued['id']}", headers=tenant.headers())
    assert refused.status_code == 409
    assert refused.get_json()["type"] == "urn:hopper:problem:illegal-transition"
    assert client.get(f"/v1/jobs/{queued['id']}", headers=tenant.headers()).status_code == 200
    done = finished_job(client, container, tenant, "mine")
    assert (
        client.delete(f"/v1/jobs/{done['id']}", headers=other_tenant.headers()).status_code == 404
    )
    reader = client.delete(f"/v1/jobs/{done['id']}", headers=tenant.headers("reader"))
    assert reader.status_code == 403
    assert client.get(f"/v1/jobs/{done['id']}", headers=tenant.headers()).status_code == 200


ACTIONS = ("job.delete", "job.retry", "job.cancel")


def rows_naming(dump: str, text: str) -> dict[str, list[str]]:
    """Per table, the rows of a `pg_dump --data-only` that hold ``text`` (COPY blocks)."""
    found: dict[str, list[str]] = {}
    table = None
    for line in dump.splitlines():
        if line.startswith("COPY "):
            table = line.split()[1].split(".")[-1]
        elif line == "\\.":
            table = None
        elif table is not None and text in line:
            found.setdefault(table, []).append(line)
    return found
