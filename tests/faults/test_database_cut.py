"""PostgreSQL cut off from the API while requests arrive: 503 problems, never a 500 or a hang,
and requests succeed again once it is back, with no restart of the API."""

from __future__ import annotations

import time

from tests.faults.proxy import FORWARD, RESET, Proxy
from tests.services import DATABASE
from tests.stack import Stack, wait_until


def test_a_database_outage_gives_503_and_the_api_recovers(stack: Stack) -> None:
    proxy = Proxy(5432)
    try:
        stack.web(
            env={"DATABASE_URL": f"postgresql+psycopg://postgres@127.0.0.1:{proxy.port}/{DATABASE}"}
        )
        keys = stack.new_tenant()
        body = {"type": "echo", "payload": {"message": "x"}}
        assert stack.request("POST", "/v1/jobs", keys["submitter"], json=body).status_code == 202

        proxy.set_mode(RESET)
        outage = []
        for _ in range(10):
            started = time.monotonic()
            response = stack.request("POST", "/v1/jobs", keys["submitter"], json=body)
            outage.append((response.status_code, time.monotonic() - started, response))
        assert {status for status, _, _ in outage} == {503}
        for _, seconds, response in outage:
            assert response.headers["Content-Type"] == "application/problem+json"
            assert response.json()["status"] == 503
            assert "Traceback" not in response.text and "psycopg" not in response.text
            assert seconds < 10
        ready = stack.request("GET", "/readyz")
        assert ready.status_code == 503

        proxy.set_mode(FORWARD)
        wait_until(
            lambda: (
                stack.request("POST", "/v1/jobs", keys["submitter"], json=body).status_code == 202
            ),
            30,
            "the API to serve again",
        )
        assert stack.request("GET", "/v1/jobs", keys["reader"]).status_code == 200
        assert stack.request("GET", "/readyz").status_code == 200
        slowest_ms = max(seconds for _, seconds, _ in outage) * 1000
        print(f"\n503 answers during the outage took at most {slowest_ms:.0f} ms")
    finally:
        proxy.close()


def test_a_redis_outage_stops_neither_submission_nor_execution(stack: Stack) -> None:
    proxy = Proxy(6379)
    try:
        gone = {"REDIS_URL": f"redis://127.0.0.1:{proxy.port}/0"}
        proxy.set_mode(RESET)
        stack.web(env=gone)
        stack.worker(env=gone)
        stack.scheduler(env=gone)
        keys = stack.new_tenant()
        ready = stack.request("GET", "/readyz")
        assert ready.status_code == 200
        assert ready.json()["checks"]["redis"].startswith("unavailable")
        job = stack.request(
            "POST",
            "/v1/jobs",
            keys["submitter"],
            json={"type": "echo", "payload": {"message": "x"}},
        )
        assert job.status_code == 202
        assert stack.wait_for_job(job.json()["id"], keys["reader"])["status"] == "succeeded"
    finally:
        proxy.close()
