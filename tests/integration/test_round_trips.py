"""What a request asks of PostgreSQL, counted at the engine: a submission is one read of its
tenant's quotas and usage, and one statement for the job (its times from the database's clock),
a batch one a hundred jobs, and a read one
statement outside any transaction (no BEGIN, no ROLLBACK). The key is read once, then served
from the process's cache. After a commit that made jobs ready or freed a place in a window, the
dispatcher's bell is one statement more, in a transaction of its own (``RING``); in a web
process the relay's thread sends it, not the request."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from flask.testing import FlaskClient
from sqlalchemy import event

from hopper.bootstrap import Container
from tests.factories import TenantKeys

ECHO = {"type": "echo", "payload": {"message": "x"}}
RING = "SELECT pg_notify(%(channel)s, queue) FROM unnest(CAST(%(queues)s AS text[])) queue"


@contextmanager
def statements(container: Container, whole: bool = False) -> Iterator[list[str]]:
    """The statements sent meanwhile: their first words, or ``whole`` (spaces collapsed)."""
    sent: list[str] = []

    def note(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        words = " ".join(statement.split())
        sent.append(words if whole or words == RING else words.split(None, 1)[0].upper())

    event.listen(container.engine, "before_cursor_execute", note)
    try:
        yield sent
    finally:
        event.remove(container.engine, "before_cursor_execute", note)


def test_a_submission_is_a_quota_read_and_one_insert(
    client: FlaskClient, container: Container, tenant: TenantKeys
) -> None:
    assert client.get("/v1/jobs?limit=1", headers=tenant.headers()).status_code == 200
    with statements(container) as sent:
        answer = client.post("/v1/jobs", json=ECHO, headers=tenant.headers())
    assert answer.status_code == 202
    assert answer.get_json()["created_at"] is not None
    assert sent == ["SELECT", "INSERT", RING]


def test_a_batch_is_a_quota_read_and_one_insert_a_hundred_jobs_in_order(
    client: FlaskClient, container: Container, tenant: TenantKeys
) -> None:
    assert client.get("/v1/jobs?limit=1", headers=tenant.headers()).status_code == 200
    later = {**ECHO, "run_at": "2099-01-01T00:00:00Z"}
    with statements(container) as sent:
        answer = client.post(
            "/v1/jobs/batch", json={"jobs": [ECHO] * 249 + [later]}, headers=tenant.headers()
        )
    assert answer.status_code == 202, answer.get_json()
    jobs = answer.get_json()["data"]
    assert len(jobs) == 250 and sent == ["SELECT", *["INSERT"] * 3, RING]  # 100 rows each
    assert len({job["id"] for job in jobs}) == 250
    assert jobs[-1]["run_at"] == "2099-01-01T00:00:00.000Z"
    assert jobs[0]["run_at"] == jobs[0]["created_at"]


def test_an_idempotent_submission_adds_its_claim_its_binding_and_its_answer(
    client: FlaskClient, container: Container, tenant: TenantKeys
) -> None:
    assert client.get("/v1/jobs?limit=1", headers=tenant.headers()).status_code == 200
    once = {**tenant.headers(), "Idempotency-Key": f"k-{tenant.tenant_id}"}
    with statements(container) as sent:
        answer = client.post("/v1/jobs", json=ECHO, headers=once)
    assert answer.status_code == 202
    # The claim; the quotas, the job and the claim bound to it, in one transaction; the bell;
    # the answer.
    assert sent == ["INSERT", "SELECT", "INSERT", "UPDATE", RING, "UPDATE"]
    with statements(container) as replayed:
        again = client.post("/v1/jobs", json=ECHO, headers=once)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.get_json()["id"] == answer.get_json()["id"]
    assert replayed[0] == "INSERT" and "SELECT" in replayed  # refused claim, then the answer


def test_a_read_is_one_statement_outside_a_transaction(
    client: FlaskClient, container: Container, tenant: TenantKeys
) -> None:
    job = client.post("/v1/jobs", json=ECHO, headers=tenant.headers()).get_json()["id"]
    in_transaction: list[bool] = []

    def note(conn: Any, *_args: Any) -> None:
        in_transaction.append(not conn.connection.driver_connection.autocommit)

    with statements(container) as sent:
        event.listen(container.engine, "before_cursor_execute", note)
        try:
            assert client.get(f"/v1/jobs/{job}", headers=tenant.headers()).status_code == 200
            assert client.get("/v1/jobs?limit=5", headers=tenant.headers()).status_code == 200
        finally:
            event.remove(container.engine, "before_cursor_execute", note)
    assert sent == ["SELECT", "SELECT"] and in_transaction == [False, False]


def run_once(client: FlaskClient, container: Container, tenant: TenantKeys) -> list[str]:
    """Submit an echo job, then claim and finish it as a worker would: the statements of the
    run alone, whole."""
    job_id = client.post("/v1/jobs", json=ECHO, headers=tenant.headers()).get_json()["id"]
    with statements(container, whole=True) as sent:
        claim = container.execution.claim(job_id, "round-trips")
        assert claim is not None
        assert container.execution.succeed(claim, {"message": "x"}) is not None
    return sent


def test_a_run_for_a_tenant_without_endpoints_looks_none_up(
    client: FlaskClient, container: Container, tenant: TenantKeys
) -> None:
    sent = run_once(client, container, tenant)
    # The claim: its read (which also says there is no endpoint to tell), the attempt, the job;
    # then the bell, for the place it freed in the window. The finish: its read, the job, the
    # attempt. No endpoints are looked up (FOR KEY SHARE).
    assert [s if s == RING else s.split()[0] for s in sent] == [
        "SELECT",
        "INSERT",
        "UPDATE",
        RING,
        "SELECT",
        "UPDATE",
        "UPDATE",
    ]
    assert not [s for s in sent if "FOR KEY SHARE" in s]


def test_a_run_for_a_tenant_with_an_endpoint_writes_its_events(
    client: FlaskClient, container: Container, tenant: TenantKeys
) -> None:
    hook = client.post(
        "/v1/webhook-endpoints",
        json={"url": "http://127.0.0.1:9/hook"},
        headers=tenant.headers("admin"),
    )
    assert hook.status_code == 201, hook.get_json()
    sent = run_once(client, container, tenant)
    inserts = [s for s in sent if s.startswith("INSERT INTO webhook_")]
    # job.started and job.succeeded: each an event and its delivery.
    assert len([s for s in inserts if s.startswith("INSERT INTO webhook_events")]) == 2
    assert len([s for s in inserts if s.startswith("INSERT INTO webhook_deliveries")]) == 2
    assert len([s for s in sent if "FOR KEY SHARE" in s]) == 2
