"""The audit trail as README "Keys, limits and safety" promises it, on real PostgreSQL: every
audited action leaves one row naming the acting key, the client's address and the request id,
written in the transaction of the change, so a change that rolls back leaves none."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import text
from sqlalchemy.engine import Engine

from domain.model import Role
from domain.repositories import JobRepository
from hopper.bootstrap import Container
from tests.factories import unique

CLIENT_ADDRESS = "127.0.0.23"  # not the test client's default: the row must take the request's
PARKED = {"type": "echo", "payload": {"message": "x"}, "run_at": "2099-01-01T00:00:00Z"}


@dataclass(frozen=True)
class Actor:
    key_id: str
    secret: str


@dataclass
class Audited:
    """A client that sends each change with a fresh request id and notes the audit row it
    expects: (action, target id, actor key id, request id)."""

    client: FlaskClient
    expected: list[tuple[str, str, str, str]]

    def act(
        self,
        action: str,
        actor: Actor,
        method: str,
        path: str,
        target: str | None = None,
        **kw: Any,
    ) -> dict[str, Any]:
        """Send the change; its target is ``target``, or else the id in the answer."""
        request_id = f"audit-{uuid.uuid4().hex}"
        answer = self.client.open(
            path,
            method=method,
            headers={"Authorization": f"Bearer {actor.secret}", "X-Request-Id": request_id},
            environ_base={"REMOTE_ADDR": CLIENT_ADDRESS},
            **kw,
        )
        assert 200 <= answer.status_code < 300, answer.get_data(as_text=True)
        body: dict[str, Any] = answer.get_json() if answer.data else {}
        self.expected.append((action, target or body["id"], actor.key_id, request_id))
        return body

    def read(self, actor: Actor, path: str) -> dict[str, Any]:
        answer = self.client.get(path, headers={"Authorization": f"Bearer {actor.secret}"})
        assert answer.status_code == 200
        body: dict[str, Any] = answer.get_json()
        return body


def actors(container: Container) -> tuple[str, Actor, Actor]:
    tenant = container.access.create_tenant(unique("audited"))
    made = {
        role: container.access.create_key(tenant.id, f"{role} key", role)
        for role in (Role.ADMIN, Role.SUBMITTER)
    }
    admin, submitter = (Actor(made[r].record.id, made[r].secret) for r in made)
    return tenant.id, admin, submitter


def audit_rows(engine: Engine, tenant_id: str) -> list[Any]:
    with engine.connect() as connection:
        return list(
            connection.execute(
                text(
                    "SELECT action, target_id, actor_key_id, request_id, ip FROM audit_events "
                    "WHERE tenant_id = :t"
                ),
                {"t": tenant_id},
            )
        )


def key_actions(audited: Audited, admin: Actor) -> None:
    made = audited.act(
        "api_key.create", admin, "POST", "/v1/api-keys", json={"name": "n", "role": "reader"}
    )
    audited.act("api_key.revoke", admin, "DELETE", f"/v1/api-keys/{made['id']}", made["id"])


def endpoint_actions(audited: Audited, admin: Actor) -> None:
    body = {"url": "http://127.0.0.1:9/h", "enabled": False}
    hook = audited.act("webhook_endpoint.create", admin, "POST", "/v1/webhook-endpoints", json=body)
    base = f"/v1/webhook-endpoints/{hook['id']}"
    audited.act("webhook_endpoint.update", admin, "PATCH", base, json={"description": "changed"})
    audited.act("webhook_endpoint.rotate_secret", admin, "POST", f"{base}/rotate-secret")
    audited.act("webhook_endpoint.test", admin, "POST", f"{base}/test", hook["id"])
    delivery = audited.read(admin, f"{base}/deliveries")["data"][0]["id"]
    path = f"{base}/deliveries/{delivery}/redeliver"
    audited.act("webhook_delivery.redeliver", admin, "POST", path)
    audited.act("webhook_endpoint.delete", admin, "DELETE", base, hook["id"])


def job_actions(audited: Audited, submitter: Actor) -> None:
    job = audited.client.post(
        "/v1/jobs", json=PARKED, headers={"Authorization": f"Bearer {submitter.secret}"}
    ).get_json()["id"]
    audited.act("job.cancel", submitter, "POST", f"/v1/jobs/{job}/cancel")
    audited.act("job.retry", submitter, "POST", f"/v1/jobs/{job}/retry")


def test_every_audited_action_names_its_actor_address_and_request(
    client: FlaskClient, container: Container
) -> None:
    tenant_id, admin, submitter = actors(container)
    audited = Audited(client, [])
    key_actions(audited, admin)
    endpoint_actions(audited, admin)
    job_actions(audited, submitter)

    rows = audit_rows(container.engine, tenant_id)
    # Exactly the changes made, one row each; keys made for the fixture are audited as well.
    made_here = [row for row in rows if row.request_id is not None]
    assert sorted((r.action, r.target_id, r.actor_key_id, r.request_id) for r in made_here) == (
        sorted(audited.expected)
    )
    assert {row.ip for row in made_here} == {CLIENT_ADDRESS}
    shown = audited.read(admin, "/v1/audit-events?limit=100")["data"]
    assert {(e["action"], e["request_id"], e["ip"]) for e in shown} >= {
        (action, request_id, CLIENT_ADDRESS) for action, _, _, request_id in audited.expected
    }


def version_bumped(engine: Engine, job_id: str, times: int) -> Callable[..., Any]:
    """``JobRepository.get`` that, on its first ``times`` calls, lets another transaction move
    the job right after reading it: the reader's commit then fails its version check."""
    calls: list[None] = []
    original = JobRepository.get

    def read_then_race(repository: JobRepository, tenant_id: str, wanted: str) -> Any:
        job = original(repository, tenant_id, wanted)
        if wanted == job_id and len(calls) < times:
            calls.append(None)
            with engine.begin() as connection:
                connection.execute(
                    text("UPDATE jobs SET version = version + 1 WHERE id = :id"), {"id": job_id}
                )
        return job

    return read_then_race


def cancel_rows(engine: Engine, job_id: str) -> list[Any]:
    with engine.connect() as connection:
        return list(
            connection.execute(
                text("SELECT id FROM audit_events WHERE action = 'job.cancel' AND target_id = :t"),
                {"t": job_id},
            )
        )


def test_a_change_that_rolls_back_leaves_no_audit_row(
    client: FlaskClient, container: Container, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, _, submitter = actors(container)
    headers = {"Authorization": f"Bearer {submitter.secret}"}
    job = client.post("/v1/jobs", json=PARKED, headers=headers).get_json()["id"]

    # Every try conflicts at commit: the cancel is refused, and no try left an audit row.
    monkeypatch.setattr(JobRepository, "get", version_bumped(container.engine, job, times=99))
    refused = client.post(f"/v1/jobs/{job}/cancel", headers=headers)
    assert refused.status_code == 409, refused.get_data(as_text=True)
    assert client.get(f"/v1/jobs/{job}", headers=headers).get_json()["status"] == "queued"
    assert cancel_rows(container.engine, job) == []

    # The first try conflicts, the second commits: one change, so one row.
    monkeypatch.undo()  # the next patch wraps the real read, not the one above
    monkeypatch.setattr(JobRepository, "get", version_bumped(container.engine, job, times=1))
    done = client.post(f"/v1/jobs/{job}/cancel", headers=headers)
    assert done.status_code == 200, done.get_data(as_text=True)
    assert done.get_json()["status"] == "canceled"
    assert len(cancel_rows(container.engine, job)) == 1
