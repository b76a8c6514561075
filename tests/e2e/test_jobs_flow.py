"""The whole path on real processes: HTTP → PostgreSQL → RabbitMQ → celery worker → back."""

from __future__ import annotations

import hashlib
import threading

from tests.stack import Stack


def submit(stack: Stack, key: str, body: dict) -> dict:
    response = stack.request("POST", "/v1/jobs", key, json=body)
    assert response.status_code == 202, response.text
    return response.json()


def attempts(stack: Stack, key: str, job_id: str) -> list[dict]:
    return stack.request("GET", f"/v1/jobs/{job_id}/attempts", key).json()["data"]


def test_each_builtin_type_reaches_its_end(stack: Stack, keys: dict[str, str]) -> None:
    key = keys["submitter"]
    echo = submit(stack, key, {"type": "echo", "payload": {"message": "héllo"}})
    digest = submit(stack, key, {"type": "hash", "payload": {"data": "abc", "algorithm": "sha512"}})
    nap = submit(stack, key, {"type": "sleep", "payload": {"seconds": 0.3}})
    flaky = submit(stack, key, {"type": "fail", "payload": {"message": "not yet", "times": 1}})
    doomed = submit(
        stack, key, {"type": "fail", "payload": {"message": "never"}, "max_attempts": 2}
    )

    done = stack.wait_for_job(echo["id"], key)
    assert done["status"] == "succeeded"
    assert done["result"] == {"message": "héllo"}
    assert done["attempts"] == 1
    assert done["started_at"] and done["finished_at"]

    done = stack.wait_for_job(digest["id"], key)
    assert done["result"] == {"digest": hashlib.sha512(b"abc").hexdigest()}

    done = stack.wait_for_job(nap["id"], key)
    assert done["status"] == "succeeded"
    assert 0.3 <= done["result"]["slept"] < 2

    done = stack.wait_for_job(flaky["id"], key)
    assert done["status"] == "succeeded"
    assert done["result"] == {"attempt": 2}
    runs = attempts(stack, key, flaky["id"])
    assert [(a["number"], a["status"]) for a in runs] == [(1, "failed"), (2, "succeeded")]
    assert runs[0]["error"] == {"type": "handler_error", "message": "not yet"}
    assert runs[0]["worker"]

    done = stack.wait_for_job(doomed["id"], key)
    assert done["status"] == "failed"
    assert done["error"] == {"type": "handler_error", "message": "never"}
    assert done["attempts"] == 2
    assert [a["status"] for a in attempts(stack, key, doomed["id"])] == ["failed", "failed"]


def test_a_queued_job_is_canceled_and_never_runs(stack: Stack, keys: dict[str, str]) -> None:
    key = keys["submitter"]
    job = submit(
        stack, key, {"type": "echo", "payload": {"message": "x"}, "run_at": "2099-01-01T00:00:00Z"}
    )
    response = stack.request("POST", f"/v1/jobs/{job['id']}/cancel", key)
    assert response.status_code == 200
    assert response.json()["status"] == "canceled"
    assert stack.request("POST", f"/v1/jobs/{job['id']}/cancel", key).status_code == 409
    assert attempts(stack, key, job["id"]) == []


def test_walking_250_jobs_while_more_arrive(stack: Stack, keys: dict[str, str]) -> None:
    key = keys["submitter"]
    batch = [{"type": "echo", "payload": {"message": str(i)}} for i in range(250)]
    response = stack.request("POST", "/v1/jobs/batch", key, json={"jobs": batch})
    assert response.status_code == 202
    existing = {job["id"] for job in response.json()["data"]}

    stop = threading.Event()
    added: list[str] = []

    def keep_submitting() -> None:
        while not stop.is_set() and len(added) < 100:
            added.append(submit(stack, key, {"type": "echo", "payload": {"message": "late"}})["id"])

    writer = threading.Thread(target=keep_submitting)
    writer.start()
    seen: list[str] = []
    path = "/v1/jobs?limit=17"
    try:
        while path:
            page = stack.request("GET", path, keys["reader"])
            assert page.status_code == 200
            seen += [job["id"] for job in page.json()["data"]]
            link = page.headers.get("Link")
            path = link[link.index("/v1/") : link.index(">")] if link else ""
    finally:
        stop.set()
        writer.join()
    assert len(seen) == len(set(seen)), "a job appeared twice"
    assert existing <= set(seen), "a job that existed when the walk began was skipped"
    assert seen == sorted(seen, reverse=True), "not newest first"


def test_http_errors(stack: Stack, keys: dict[str, str]) -> None:
    other = stack.new_tenant()
    job = submit(stack, keys["submitter"], {"type": "echo", "payload": {"message": "x"}})

    unauthenticated = stack.request("GET", "/v1/jobs")
    assert unauthenticated.status_code == 401
    assert unauthenticated.headers["Content-Type"] == "application/problem+json"
    assert (
        stack.request("POST", "/v1/jobs", keys["reader"], json={"type": "echo"}).status_code == 403
    )
    assert stack.request("GET", f"/v1/jobs/{job['id']}", other["admin"]).status_code == 404
    invalid = stack.request(
        "POST", "/v1/jobs", keys["submitter"], json={"type": "sleep", "payload": {"seconds": "x"}}
    )
    assert invalid.status_code == 422
    assert invalid.json()["errors"][0]["field"] == "payload.seconds"
    malformed = stack.request(
        "POST",
        "/v1/jobs",
        keys["submitter"],
        data=b'{"type": ',
        headers={"Content-Type": "application/json"},
    )
    assert malformed.status_code == 400
    huge = stack.request(
        "POST",
        "/v1/jobs",
        keys["submitter"],
        data=b"x" * (1024 * 1024 + 10),
        headers={"Content-Type": "application/json"},
    )
    assert huge.status_code == 413
    assert stack.request("PUT", "/v1/jobs", keys["submitter"], json={}).status_code == 405
    for response in (invalid, malformed, huge):
        problem = response.json()
        assert set(problem) >= {"type", "title", "status", "detail", "request_id"}
        assert "Traceback" not in response.text
