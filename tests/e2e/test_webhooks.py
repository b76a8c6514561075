"""Webhooks end to end: real processes deliver to a real receiver on 127.0.0.1, which verifies
every delivery with the reference `standardwebhooks` library."""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Iterator
from datetime import datetime

import pytest
from standardwebhooks import Webhook

from tests.receiver import Received, Receiver
from tests.services import real_env
from tests.stack import Stack, free_port, wait_until

FAST_RETRIES = {"HOPPER_WEBHOOK_RETRY_SCHEDULE": "1,1,1,1"}


@pytest.fixture(scope="module")
def stack(migrated_database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    running = Stack(real_env(**FAST_RETRIES), tmp_path_factory.mktemp("webhooks"))
    try:
        running.web()
        running.worker()
        running.worker(queues="webhooks", concurrency=16)
        running.scheduler()
        yield running
    finally:
        running.stop()


def endpoint(stack: Stack, key: str, url: str, **fields: object) -> dict:
    response = stack.request("POST", "/v1/webhook-endpoints", key, json={"url": url, **fields})
    assert response.status_code == 201, response.text
    assert response.headers["Cache-Control"] == "no-store"
    return response.json()


def submit(stack: Stack, key: str, body: dict) -> dict:
    response = stack.request("POST", "/v1/jobs", key, json=body)
    assert response.status_code == 202, response.text
    return response.json()


def verified(secret: str, request: Received) -> dict:
    """Verified by the reference library, or it raises."""
    return Webhook(secret).verify(request.body, request.headers)


def of_job(job_id: str, event_type: str | None = None):
    def match(request: Received) -> bool:
        body = json.loads(request.body)
        return body["data"].get("id") == job_id and (
            event_type is None or body["type"] == event_type
        )

    return match


def deliveries(stack: Stack, key: str, endpoint_id: str) -> list[dict]:
    return stack.request(
        "GET", f"/v1/webhook-endpoints/{endpoint_id}/deliveries?limit=100", key
    ).json()["data"]


def test_job_events_arrive_signed_and_verifiable(stack: Stack) -> None:
    keys = stack.new_tenant()
    receiver = Receiver()
    try:
        hook = endpoint(stack, keys["admin"], receiver.url)
        assert hook["secret"].startswith("whsec_")
        done = stack.request(
            "POST",
            "/v1/jobs",
            keys["submitter"],
            json={"type": "echo", "payload": {"message": "hi"}},
            headers={"X-Request-Id": "req-webhooks-e2e"},
        ).json()
        doomed = submit(
            stack,
            keys["submitter"],
            {"type": "fail", "payload": {"message": "no"}, "max_attempts": 1},
        )
        nap = submit(stack, keys["submitter"], {"type": "sleep", "payload": {"seconds": 30}})
        receiver.wait_for(1, where=of_job(nap["id"], "job.started"))
        assert (
            stack.request("POST", f"/v1/jobs/{nap['id']}/cancel", keys["submitter"]).status_code
            == 202
        )

        succeeded = receiver.wait_for(1, where=of_job(done["id"], "job.succeeded"))[0]
        receiver.wait_for(1, where=of_job(doomed["id"], "job.failed"))
        receiver.wait_for(1, where=of_job(nap["id"], "job.canceled"))
        seen = {
            (json.loads(r.body)["data"]["id"], json.loads(r.body)["type"])
            for r in receiver.received
        }
        for job in (done, doomed, nap):
            assert (job["id"], "job.started") in seen
        for request in receiver.received:
            payload = verified(hook["secret"], request)
            assert set(payload) == {"type", "timestamp", "data"}
            assert request.headers["X-Request-Id"]
            assert request.headers["User-Agent"].startswith("Hopper/")
        final = stack.request("GET", f"/v1/jobs/{done['id']}", keys["reader"]).json()
        assert json.loads(succeeded.body)["data"] == final
        # The submission's request id travels with every delivery the job causes.
        assert {r.headers["X-Request-Id"] for r in receiver.received if of_job(done["id"])(r)} == {
            "req-webhooks-e2e"
        }
    finally:
        receiver.close()


def test_two_500s_then_success_are_all_in_the_attempt_log(stack: Stack) -> None:
    keys = stack.new_tenant()
    answers = iter([500, 500])
    receiver = Receiver(lambda request: (next(answers, 200), {}, b"body of the answer"))
    try:
        hook = endpoint(stack, keys["admin"], receiver.url, event_types=["job.succeeded"])
        job = submit(stack, keys["submitter"], {"type": "echo", "payload": {"message": "x"}})
        arrivals = receiver.wait_for(3, where=of_job(job["id"]))
        assert len({r.headers["webhook-id"] for r in arrivals}) == 1, (
            "webhook-id changed across retries"
        )
        assert len({r.body for r in arrivals}) == 1, "the body changed across retries"
        for request in arrivals:
            verified(hook["secret"], request)
        wait_until(
            lambda: deliveries(stack, keys["admin"], hook["id"])[0]["status"] == "succeeded",
            20,
            "success",
        )
        (delivery,) = deliveries(stack, keys["admin"], hook["id"])
        assert [a["status_code"] for a in delivery["attempt_log"]] == [500, 500, 200]
        assert delivery["attempts"] == 3
        assert all(a["response_excerpt"] == "body of the answer" for a in delivery["attempt_log"])
        one = stack.request(
            "GET", f"/v1/webhook-endpoints/{hook['id']}/deliveries/{delivery['id']}", keys["admin"]
        )
        assert one.json() == delivery
        again = stack.request(
            "POST",
            f"/v1/webhook-endpoints/{hook['id']}/deliveries/{delivery['id']}/redeliver",
            keys["admin"],
        )
        assert again.status_code == 202
        resent = receiver.wait_for(4, where=of_job(job["id"]))[-1]
        assert resent.headers["webhook-id"] == arrivals[0].headers["webhook-id"]
        assert resent.body == arrivals[0].body
        verified(hook["secret"], resent)
    finally:
        receiver.close()


def test_a_receiver_that_is_down_for_a_while_misses_nothing(stack: Stack) -> None:
    keys = stack.new_tenant()
    port = free_port()
    hook = endpoint(
        stack, keys["admin"], f"http://127.0.0.1:{port}/hooks", event_types=["job.succeeded"]
    )
    jobs = [
        submit(stack, keys["submitter"], {"type": "echo", "payload": {"message": str(i)}})
        for i in range(5)
    ]
    wait_until(
        lambda: (
            all(d["attempts"] >= 2 for d in deliveries(stack, keys["admin"], hook["id"]))
            and len(deliveries(stack, keys["admin"], hook["id"])) == 5
        ),
        30,
        "two failed attempts each while the receiver is down",
    )
    receiver = Receiver(port=port)
    try:
        for job in jobs:
            verified(hook["secret"], receiver.wait_for(1, where=of_job(job["id"]))[0])
        logs = [d["attempt_log"] for d in deliveries(stack, keys["admin"], hook["id"])]
        assert all(log[0]["status_code"] is None and log[0]["error"] for log in logs)
    finally:
        receiver.close()


def test_410_gone_disables_the_endpoint(stack: Stack) -> None:
    keys = stack.new_tenant()
    receiver = Receiver(lambda request: (410, {}, b"gone"))
    try:
        hook = endpoint(stack, keys["admin"], receiver.url, event_types=["job.succeeded"])
        submit(stack, keys["submitter"], {"type": "echo", "payload": {"message": "x"}})
        wait_until(
            lambda: (
                not stack.request(
                    "GET", f"/v1/webhook-endpoints/{hook['id']}", keys["admin"]
                ).json()["enabled"]
            ),
            30,
            "the endpoint to be disabled",
        )
        shown = stack.request("GET", f"/v1/webhook-endpoints/{hook['id']}", keys["admin"]).json()
        assert "410" in shown["disabled_reason"]
        assert [d["status"] for d in deliveries(stack, keys["admin"], hook["id"])] == ["failed"]
        assert len(receiver.received) == 1
    finally:
        receiver.close()


def test_after_a_rotation_deliveries_verify_with_old_and_new_secrets(stack: Stack) -> None:
    keys = stack.new_tenant()
    receiver = Receiver()
    try:
        hook = endpoint(stack, keys["admin"], receiver.url)
        rotated = stack.request(
            "POST", f"/v1/webhook-endpoints/{hook['id']}/rotate-secret", keys["admin"]
        )
        assert rotated.status_code == 200
        new_secret = rotated.json()["secret"]
        assert new_secret != hook["secret"]
        test = stack.request("POST", f"/v1/webhook-endpoints/{hook['id']}/test", keys["admin"])
        assert test.status_code == 202
        (request,) = receiver.wait_for(1)
        assert request.headers["webhook-id"] == test.json()["event_id"]
        assert len(request.headers["webhook-signature"].split(" ")) == 2
        assert verified(hook["secret"], request)["type"] == "webhook.test"
        assert verified(new_secret, request)["data"] == {"endpoint_id": hook["id"]}
        shown = stack.request("GET", f"/v1/webhook-endpoints/{hook['id']}", keys["admin"]).json()
        assert "secret" not in shown
    finally:
        receiver.close()


def test_a_dead_subscriber_delays_neither_jobs_nor_healthy_endpoints(stack: Stack) -> None:
    stuck_tenant, healthy_tenant = stack.new_tenant(), stack.new_tenant()
    dead, alive = Receiver(), Receiver()
    try:
        endpoint(stack, stuck_tenant["admin"], dead.url)
        endpoint(stack, healthy_tenant["admin"], alive.url, event_types=["job.succeeded"])

        def latencies(count: int) -> list[float]:
            spans = []
            for _ in range(count):
                job = submit(
                    stack,
                    healthy_tenant["submitter"],
                    {"type": "echo", "payload": {"message": "x"}},
                )
                arrived = alive.wait_for(1, 30, where=of_job(job["id"]))[0]
                finished = json.loads(arrived.body)["data"]["finished_at"]
                spans.append(
                    arrived.at - datetime.fromisoformat(finished.replace("Z", "+00:00")).timestamp()
                )
            return spans

        usual = statistics.median(latencies(10))
        dead.hang.set()
        for i in range(30):  # 60 events, each waiting out the 10 s timeout
            submit(
                stack, stuck_tenant["submitter"], {"type": "echo", "payload": {"message": str(i)}}
            )
        wait_until(lambda: len(dead.hung) >= 4, 30, "the dead endpoint to hold its deliveries")
        started = time.monotonic()
        loaded = statistics.median(latencies(10))
        figures = f"median {usual * 1000:.0f} ms alone, {loaded * 1000:.0f} ms beside a dead one"
        print(f"\nhealthy endpoint: {figures}")
        assert loaded < usual + 1.0, "a dead subscriber slowed a healthy one"
        assert time.monotonic() - started < 30
        assert dead.most_held_at_once <= 4, "one endpoint took more delivery workers than its share"
    finally:
        dead.close()
        alive.close()
