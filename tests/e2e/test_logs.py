"""Logs end to end: every process of a real stack writes JSON lines; a job's worker lines carry
the id of the request that submitted it; and after real work (jobs, webhook deliveries, a secret
rotation, a bad key, a key pasted into a URL) no API key and no webhook secret appears anywhere
in any process's output, at the most talkative log level."""

from __future__ import annotations

import json
import re
import secrets
import string
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.receiver import Receiver
from tests.services import real_env
from tests.stack import Process, Stack, wait_until

ENV = {
    "HOPPER_LOG_FORMAT": "json",
    "HOPPER_LOG_LEVEL": "DEBUG",
    "HOPPER_WEBHOOK_RETRY_SCHEDULE": "1,1,1,1",
}


@pytest.fixture(scope="module")
def stack(migrated_database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    running = Stack(real_env(**ENV), tmp_path_factory.mktemp("logs"))
    try:
        running.web()
        running.worker()
        running.worker(queues="webhooks", concurrency=4)
        running.scheduler()
        yield running
    finally:
        running.stop()


def process(stack: Stack, prefix: str, nth: int = 0) -> Process:
    return [p for p in stack.processes if p.name.startswith(prefix + "-")][nth]


def events(proc: Process) -> list[dict[str, Any]]:
    found = []
    for line in proc.output().splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, dict):
            found.append(event)
    return found


def logged(proc: Process, event: str, **fields: str) -> list[dict[str, Any]]:
    return [
        e
        for e in events(proc)
        if e.get("event") == event and all(e.get(k) == v for k, v in fields.items())
    ]


def not_json(proc: Process) -> list[str]:
    """Lines that are not one JSON event. Celery prints its banner on stdout, which the stack
    sends to the same file; a coverage run may add its own warnings."""
    odd = []
    for line in proc.output().splitlines():
        if not line.strip() or line.startswith("Coverage.py"):
            continue
        try:
            json.loads(line)
        except ValueError:
            odd.append(line)
    return odd


def request_id() -> str:
    return f"req-logs-{uuid.uuid4().hex[:12]}"


def post(stack: Stack, path: str, key: str, rid: str, body: Any = None) -> dict[str, Any]:
    response = stack.request("POST", path, key, json=body, headers={"X-Request-Id": rid})
    assert response.status_code in (200, 201, 202), response.text
    assert response.headers["X-Request-Id"] == rid
    return response.json()


def test_no_response_header_names_a_server_version(stack: Stack) -> None:
    answers = [
        stack.request("GET", "/healthz"),
        stack.request("GET", "/docs/"),
        stack.request("GET", "/v1/jobs"),
        stack.request("GET", "/nowhere"),
    ]
    for response in answers:
        assert not re.search(r"\d", response.headers.get("Server", ""))
        for name, value in response.headers.items():
            assert not re.search(r"(gunicorn|werkzeug|python|flask)/", value, re.I), name
        assert response.headers["X-Frame-Options"] == "DENY"
        assert response.headers["Content-Security-Policy"]


def test_no_secret_is_logged_and_the_request_id_follows_the_work(stack: Stack) -> None:
    keys = stack.new_tenant()
    receiver = Receiver()
    unknown_key = "hop_" + "".join(
        secrets.choice(string.ascii_letters + string.digits) for _ in range(40)
    )
    try:
        hook = post(
            stack, "/v1/webhook-endpoints", keys["admin"], request_id(), {"url": receiver.url}
        )
        echo_rid, fail_rid, test_rid = request_id(), request_id(), request_id()
        echo = post(
            stack,
            "/v1/jobs",
            keys["submitter"],
            echo_rid,
            {"type": "echo", "payload": {"message": "hi"}},
        )
        doomed = post(
            stack,
            "/v1/jobs",
            keys["submitter"],
            fail_rid,
            # a client that pastes its key into a payload: the handler raises with it
            {"type": "fail", "payload": {"message": f"no {keys['admin']}"}, "max_attempts": 2},
        )
        assert stack.wait_for_job(echo["id"], keys["reader"])["status"] == "succeeded"
        assert stack.wait_for_job(doomed["id"], keys["reader"])["status"] == "failed"
        receiver.wait_for(
            1, where=lambda r: echo["id"].encode() in r.body and b"succeeded" in r.body
        )
        rotated = post(
            stack, f"/v1/webhook-endpoints/{hook['id']}/rotate-secret", keys["admin"], request_id()
        )
        sent = post(stack, f"/v1/webhook-endpoints/{hook['id']}/test", keys["admin"], test_rid)
        receiver.wait_for(1, where=lambda r: r.headers["webhook-id"] == sent["event_id"])
        refused = stack.request("GET", "/v1/jobs", unknown_key)
        assert refused.status_code == 401
        assert stack.request("GET", f"/v1/jobs/{keys['admin']}", keys["reader"]).status_code == 404
        worker, webhooks = process(stack, "worker", 0), process(stack, "worker", 1)
        wait_until(
            lambda: (
                len(logged(worker, "job_attempt_ended", job_id=doomed["id"])) == 2
                and logged(worker, "job_attempt_ended", job_id=echo["id"])
                and logged(webhooks, "webhook_attempt", request_id=echo_rid)
                and logged(webhooks, "webhook_attempt", request_id=test_rid)
            ),
            20,
            "the workers' lines about this work",
        )
    finally:
        receiver.close()

    forbidden = [keys["admin"], keys["submitter"], keys["reader"], unknown_key]
    forbidden += [hook["secret"], rotated["secret"]]
    assert rotated["secret"] != hook["secret"]
    for proc in stack.processes:
        text = proc.output()
        assert text.strip(), f"{proc.name} wrote nothing"
        for secret in forbidden:
            for form in (secret, secret.removeprefix("hop_").removeprefix("whsec_")):
                assert form not in text, f"a secret is in {proc.name}'s log"
    for proc in (process(stack, "web"), process(stack, "scheduler")):
        assert not_json(proc) == [], f"{proc.name} wrote lines that are not JSON events"

    web = events(process(stack, "web"))
    (submission,) = [
        e for e in web if e["event"] == "http_request" and e.get("request_id") == echo_rid
    ]
    assert submission["tenant_id"] == keys["tenant_id"]
    assert (submission["method"], submission["path"], submission["status"]) == (
        "POST",
        "/v1/jobs",
        202,
    )
    assert isinstance(submission["duration_ms"], float)
    assert any(e.get("path") == "/v1/jobs/[redacted]" and e["status"] == 404 for e in web)
    assert any(e.get("status") == 401 and "tenant_id" not in e for e in web)

    assert logged(process(stack, "scheduler"), "scheduler_started")
    worker = events(process(stack, "worker", 0))
    for job, rid, attempts in ((echo, echo_rid, 1), (doomed, fail_rid, 2)):
        lines = [e for e in worker if e.get("job_id") == job["id"]]
        assert [e.get("request_id") for e in lines] == [rid] * len(lines), lines
        assert [e["event"] for e in lines].count("job_started") == attempts
        assert [e["event"] for e in lines].count("job_attempt_ended") == attempts
    assert [e["event"] for e in worker if e.get("job_id") == doomed["id"]].count(
        "handler_raised"
    ) == 2

    assert all(e["delivery_id"] for e in logged(webhooks, "webhook_attempt", request_id=echo_rid))
    (test_delivery,) = logged(webhooks, "webhook_attempt", request_id=test_rid)
    assert test_delivery["delivery_id"].startswith("dlv_")
    assert test_delivery["status_code"] == 200
