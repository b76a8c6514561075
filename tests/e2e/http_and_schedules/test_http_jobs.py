"""`http` jobs end to end, on the package's stack (conftest): the real API, schedulers and two
threaded `http` pools, sending to a receiver on 127.0.0.1 that verifies every request with
`standardwebhooks`, as a target would.

What each answer does to the job (2xx, 503 then 200, 404, 302, a timeout, a refused target),
that secret headers reach the target and nothing else (the API, the logs, a dump of the
database), and that a worker killed mid-request leaves the job to another worker, which sends
the same job id again.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook

from tests.e2e.http_and_schedules.shared import Running
from tests.receiver import Answer, Received, Receiver
from tests.services import DATABASE
from tests.stack import Process, Stack, wait_until

pytestmark = pytest.mark.e2e

SECRET_VALUE = "s3cr3t-token-that-must-stay-put"


class Target:
    """A target with a route per behaviour; every request is verified with each secret."""

    def __init__(self) -> None:
        self.secrets: list[str] = []
        self.unverified: list[str] = []
        self.release_hold = threading.Event()
        self.receiver = Receiver(self.answer)

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.receiver.port}{path}"

    def answer(self, request: Received) -> Answer:
        self._verify(request)
        route = request.path.split("?")[0]
        attempt = request.headers.get("Hopper-Attempt")
        if route == "/busy" and attempt == "1":
            return 503, {"Retry-After": "2"}, b"busy"
        if route == "/gone":
            return 404, {"Content-Type": "text/plain"}, b"no such thing"
        if route == "/moved":
            return 302, {"Location": self.url("/elsewhere")}, b""
        if route == "/slow":
            time.sleep(3)
        if route == "/hold" and attempt == "1":
            self.release_hold.wait(60)
            return 500, {}, b"too late"
        body = json.dumps({"seen": route, "attempt": attempt}).encode()
        return 200, {"Content-Type": "application/json", "ETag": '"v1"', "X-Other": "no"}, body

    def _verify(self, request: Received) -> None:
        """Every secret in use must verify the request alone, as a target holding only the
        old or only the new one during a rotation would."""
        for secret in self.secrets:
            try:
                # The signature only: a request without a body (GET) has no JSON to read.
                Webhook(secret).verify(request.body, request.headers, json_parse=False)
            except Exception as exc:  # its own error, or a ValueError of a malformed header
                self.unverified.append(f"{request.path}: {exc}")

    def requests_to(self, route: str) -> list[Received]:
        return [r for r in self.receiver.received if r.path.split("?")[0] == route]


@pytest.fixture(scope="module")
def target() -> Iterator[Target]:
    serving = Target()
    yield serving
    serving.release_hold.set()
    serving.receiver.close()


@pytest.fixture(scope="module")
def keys(stack: Stack, target: Target) -> dict[str, str]:
    """A tenant whose secret was rotated once (both secrets sign) and whose allow-list holds
    127.0.0.1, the receiver's address, and nothing else."""
    keys = stack.new_tenant()
    for _ in range(2):
        created = stack.request("POST", "/v1/http-target-secret", keys["admin"])
        assert created.status_code == 200, created.text
        target.secrets.append(created.json()["secret"])
    listed = stack.request(
        "PUT", "/v1/http-target-allowlist", keys["admin"], json={"hosts": ["127.0.0.1"]}
    )
    assert listed.status_code == 200, listed.text
    return keys


def submit(stack: Stack, keys: dict[str, str], payload: dict[str, Any], **extra: Any) -> str:
    answer = stack.request(
        "POST", "/v1/jobs", keys["submitter"], json={"type": "http", "payload": payload, **extra}
    )
    assert answer.status_code == 202, answer.text
    job_id: str = answer.json()["id"]
    return job_id


@pytest.fixture(scope="module")
def early(stack: Stack, keys: dict[str, str], target: Target) -> dict[str, str]:
    """The jobs whose answers the tests below check, submitted at once at the start: they run
    side by side in the pool (one waits out a `Retry-After`, one times out twice) and each test
    waits for its own."""
    return {
        "busy": submit(stack, keys, {"url": target.url("/busy")}),
        "gone": submit(stack, keys, {"url": target.url("/gone")}),
        "moved": submit(stack, keys, {"url": target.url("/moved")}),
        "slow": submit(
            stack, keys, {"url": target.url("/slow"), "timeout_seconds": 1}, max_attempts=2
        ),
        # localhost is the receiver too, but only 127.0.0.1 is on the tenant's allow-list.
        "via localhost": submit(stack, keys, {"url": target.url("/ok?via=localhost", "localhost")}),
    }


@pytest.mark.usefixtures("early")  # its secret must stay put while the others run too
def test_a_2xx_succeeds_with_the_answer_recorded_and_secret_headers_kept_secret(
    stack: Stack, keys: dict[str, str], target: Target
) -> None:
    job_id = submit(
        stack,
        keys,
        {
            "url": target.url("/ok?n=1"),
            "method": "PUT",
            "headers": {"X-Trace": "t-1"},
            "secret_headers": {"Authorization": f"Bearer {SECRET_VALUE}"},
            "body": {"order": 42},
        },
    )
    job = stack.wait_for_job(job_id, keys["reader"])

    assert job["status"] == "succeeded", job
    assert job["result"] == {
        "status": 200,
        "headers": {"content-type": "application/json", "etag": '"v1"'},
        "body": json.dumps({"seen": "/ok", "attempt": "1"}),
        "truncated": False,
    }
    (request,) = target.requests_to("/ok")
    assert request.method == "PUT"
    assert json.loads(request.body) == {"order": 42}
    assert request.headers["Authorization"] == f"Bearer {SECRET_VALUE}"
    assert request.headers["X-Trace"] == "t-1"
    assert request.headers["Hopper-Job-Id"] == job_id
    assert request.headers["Hopper-Attempt"] == "1"
    assert request.headers["webhook-id"] == f"{job_id}.1"
    assert len(request.headers["webhook-signature"].split()) == 2  # both secrets sign
    assert target.unverified == []

    shown = stack.request("GET", f"/v1/jobs/{job_id}", keys["reader"]).json()
    assert shown["payload"]["secret_headers"] == {"Authorization": "[redacted]"}
    assert SECRET_VALUE not in json.dumps(shown)
    assert SECRET_VALUE not in stack.logs()
    assert "Hopper-Job-Id" in request.headers  # the logs above were of a real run
    assert SECRET_VALUE not in database_dump(), "the secret header is stored readable"


def test_a_503_is_retried_after_its_retry_after_then_succeeds(
    stack: Stack, keys: dict[str, str], target: Target, early: dict[str, str]
) -> None:
    job = stack.wait_for_job(early["busy"], keys["reader"])
    assert target.unverified == []

    assert job["status"] == "succeeded", job
    assert job["attempts"] == 2
    first, second = target.requests_to("/busy")
    # Retry-After: 2, where the backoff would have waited at most HOPPER_RETRY_MAX_SECONDS (1).
    assert second.at - first.at >= 1.9
    assert [first.headers["Hopper-Attempt"], second.headers["Hopper-Attempt"]] == ["1", "2"]
    assert first.headers["Hopper-Job-Id"] == second.headers["Hopper-Job-Id"] == job["id"]


def test_a_404_fails_after_one_attempt_with_the_answer_recorded(
    stack: Stack, keys: dict[str, str], target: Target, early: dict[str, str]
) -> None:
    job = stack.wait_for_job(early["gone"], keys["reader"])
    assert target.unverified == []

    assert job["status"] == "failed", job
    assert job["attempts"] == 1
    assert job["max_attempts"] == 5
    assert "HTTP 404" in job["error"]["message"]
    assert "no such thing" in job["error"]["message"]


def test_a_302_fails_and_is_not_followed(
    stack: Stack, keys: dict[str, str], target: Target, early: dict[str, str]
) -> None:
    job = stack.wait_for_job(early["moved"], keys["reader"])
    assert target.unverified == []

    assert job["status"] == "failed", job
    assert job["attempts"] == 1
    assert "HTTP 302" in job["error"]["message"]
    assert "/elsewhere" in job["error"]["message"]
    assert target.requests_to("/elsewhere") == []


def test_a_timeout_is_retried_and_fails_when_the_attempts_run_out(
    stack: Stack, keys: dict[str, str], target: Target, early: dict[str, str]
) -> None:
    job = stack.wait_for_job(early["slow"], keys["reader"])
    assert target.unverified == []

    assert job["status"] == "failed", job
    assert job["attempts"] == 2
    assert "timed out" in job["error"]["message"]
    assert len(target.requests_to("/slow")) == 2


def test_a_private_host_off_the_allow_list_is_refused(
    stack: Stack, keys: dict[str, str], target: Target, early: dict[str, str]
) -> None:
    job = stack.wait_for_job(early["via localhost"], keys["reader"])

    assert job["status"] == "failed", job
    assert job["attempts"] == 1
    assert "refused" in job["error"]["message"]
    assert not [r for r in target.requests_to("/ok") if "via=localhost" in r.path]


def test_a_worker_killed_mid_request_leaves_the_job_to_another_with_the_same_job_id(
    running: Running, keys: dict[str, str], target: Target
) -> None:
    stack = running.stack
    job_id = submit(stack, keys, {"url": target.url("/hold")})
    (held,) = target.receiver.wait_for(1, where=lambda r: r.path == "/hold")
    holder = worker_running(stack, keys, job_id)
    assert holder.alive()

    os.killpg(holder.pid, signal.SIGKILL)
    job = stack.wait_for_job(job_id, keys["reader"], timeout=60)
    target.release_hold.set()

    assert job["status"] == "succeeded", job
    first, retried = target.requests_to("/hold")
    assert first is held
    assert first.headers["Hopper-Job-Id"] == retried.headers["Hopper-Job-Id"] == job_id
    assert [first.headers["Hopper-Attempt"], retried.headers["Hopper-Attempt"]] == ["1", "2"]
    survivor = worker_running(stack, keys, job_id, attempt=2)
    assert survivor is not holder
    assert survivor in running.http_workers


def worker_running(stack: Stack, keys: dict[str, str], job_id: str, attempt: int = 1) -> Process:
    """The `http` worker process whose pid the job's attempt records."""
    attempts: list[dict[str, Any]] = []

    def recorded() -> bool:
        answer = stack.request("GET", f"/v1/jobs/{job_id}/attempts", keys["reader"])
        attempts[:] = answer.json()["data"] if answer.status_code == 200 else []
        return len(attempts) >= attempt

    wait_until(recorded, 20, f"attempt {attempt} of {job_id} to be recorded")
    pid = int(attempts[attempt - 1]["worker"].rsplit(":", 1)[1])
    (process,) = [p for p in stack.processes if p.pid == pid]
    return process


def database_dump() -> str:
    """Every row of the test database as `pg_dump` writes it."""
    return subprocess.run(
        ["pg_dump", "--data-only", "-h", "127.0.0.1", "-U", "postgres", DATABASE],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
