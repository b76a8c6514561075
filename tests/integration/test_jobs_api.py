"""The jobs API over the real app, PostgreSQL and RabbitMQ (no worker runs here)."""

from __future__ import annotations

import json

import pytest
from flask.testing import FlaskClient

from tests.factories import TenantKeys


def submit(client: FlaskClient, tenant: TenantKeys, body: dict, **kwargs):
    return client.post("/v1/jobs", json=body, headers=tenant.headers(), **kwargs)


def test_submit_records_the_job_and_points_at_it(client: FlaskClient, tenant: TenantKeys) -> None:
    response = submit(
        client, tenant, {"type": "echo", "payload": {"message": "hi"}, "metadata": {"k": "v"}}
    )
    assert response.status_code == 202
    job = response.get_json()
    assert response.headers["Location"] == f"/v1/jobs/{job['id']}"
    assert job["id"].startswith("job_")
    assert job["status"] == "queued"
    assert job["priority"] == "normal"
    assert job["metadata"] == {"k": "v"}
    assert job["max_attempts"] == 3
    assert job["created_at"].endswith("Z")
    fetched = client.get(job["id"].join(["/v1/jobs/", ""]), headers=tenant.headers("reader"))
    assert fetched.status_code == 200
    # The same representation, and a read says why it waits (no worker runs here)
    assert fetched.get_json() == {**job, "waiting_for": "capacity"} and job["waiting_for"] is None


def test_get_gives_an_etag_and_304_and_retry_after(client: FlaskClient, tenant: TenantKeys) -> None:
    job = submit(client, tenant, {"type": "echo", "payload": {"message": "x"}}).get_json()
    first = client.get(f"/v1/jobs/{job['id']}", headers=tenant.headers("reader"))
    assert first.headers["ETag"]
    assert first.headers["Retry-After"] == "1"
    again = client.get(
        f"/v1/jobs/{job['id']}",
        headers={**tenant.headers("reader"), "If-None-Match": first.headers["ETag"]},
    )
    assert again.status_code == 304
    assert again.data == b""


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"type": "nope", "payload": {}}, "type"),
        ({"type": "sleep", "payload": {"seconds": -1}}, "payload.seconds"),
        ({"type": "sleep", "payload": {"seconds": 1, "extra": 1}}, "payload.extra"),
        ({"type": "echo", "payload": {"message": "x"}, "surprise": 1}, "surprise"),
        ({"type": "echo", "payload": {"message": "x"}, "priority": "urgent"}, "priority"),
        ({"type": "echo", "payload": {"message": "x"}, "max_attempts": 26}, "max_attempts"),
        ({"type": "echo", "payload": {"message": "x"}, "timeout_seconds": 0}, "timeout_seconds"),
        ({"type": "echo", "payload": {"message": "x"}, "run_at": "2030-01-01T00:00:00"}, "run_at"),
        ({"payload": {"message": "x"}}, "type"),
    ],
)
def test_invalid_fields_are_422_naming_the_field(
    client: FlaskClient, tenant: TenantKeys, body: dict, field: str
) -> None:
    response = submit(client, tenant, body)
    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"
    problem = response.get_json()
    assert problem["status"] == 422
    assert problem["type"].endswith("validation-error")
    assert field in [e["field"] for e in problem["errors"]], problem
    assert problem["request_id"] == response.headers["X-Request-Id"]


def test_batch_is_all_or_none(client: FlaskClient, tenant: TenantKeys) -> None:
    good = {"type": "echo", "payload": {"message": "ok"}}
    bad = {"type": "sleep", "payload": {"seconds": "long"}}
    before = client.get("/v1/jobs?limit=100", headers=tenant.headers("reader")).get_json()["data"]
    refused = client.post(
        "/v1/jobs/batch", json={"jobs": [good, good, good, bad]}, headers=tenant.headers()
    )
    assert refused.status_code == 422
    assert [e["field"] for e in refused.get_json()["errors"]] == ["jobs.3.payload.seconds"]
    after = client.get("/v1/jobs?limit=100", headers=tenant.headers("reader")).get_json()["data"]
    assert after == before
    accepted = client.post(
        "/v1/jobs/batch",
        json={"jobs": [good, {**good, "priority": "high"}]},
        headers=tenant.headers(),
    )
    assert accepted.status_code == 202
    data = accepted.get_json()["data"]
    assert [j["priority"] for j in data] == ["normal", "high"]


def test_cancel_a_queued_job_then_409(client: FlaskClient, tenant: TenantKeys) -> None:
    job = submit(
        client,
        tenant,
        {"type": "echo", "payload": {"message": "x"}, "run_at": "2099-01-01T00:00:00Z"},
    ).get_json()
    canceled = client.post(f"/v1/jobs/{job['id']}/cancel", headers=tenant.headers())
    assert canceled.status_code == 200
    assert canceled.get_json()["status"] == "canceled"
    assert canceled.get_json()["error"]["type"] == "canceled"
    again = client.post(f"/v1/jobs/{job['id']}/cancel", headers=tenant.headers())
    assert again.status_code == 409
    retried = client.post(f"/v1/jobs/{job['id']}/retry", headers=tenant.headers())
    assert retried.status_code == 202
    assert retried.get_json()["status"] == "queued"
    assert retried.get_json()["error"] is None


def test_other_tenants_jobs_do_not_exist(
    client: FlaskClient, tenant: TenantKeys, other_tenant: TenantKeys
) -> None:
    job = submit(client, tenant, {"type": "echo", "payload": {"message": "x"}}).get_json()
    for method, path in [
        ("get", f"/v1/jobs/{job['id']}"),
        ("get", f"/v1/jobs/{job['id']}/attempts"),
        ("post", f"/v1/jobs/{job['id']}/cancel"),
        ("post", f"/v1/jobs/{job['id']}/retry"),
    ]:
        response = getattr(client, method)(path, headers=other_tenant.headers())
        assert response.status_code == 404, path
    missing = client.get("/v1/jobs/job_01aaaaaaaaaaaaaaaaaaaaaaaa", headers=tenant.headers())
    assert missing.status_code == 404
    assert missing.get_json()["detail"] == client.get(
        f"/v1/jobs/{job['id']}", headers=other_tenant.headers()
    ).get_json()["detail"].replace(job["id"], "job_01aaaaaaaaaaaaaaaaaaaaaaaa")


def test_error_precedence(client: FlaskClient, tenant: TenantKeys) -> None:
    no_key = client.get("/v1/nowhere")
    assert no_key.status_code == 401
    assert no_key.headers["WWW-Authenticate"].startswith("Bearer")
    assert client.get("/v1/jobs", headers={"Authorization": "Bearer hop_bogus"}).status_code == 401
    weak = client.post(
        "/v1/jobs",
        data="{not json",
        content_type="application/json",
        headers=tenant.headers("reader"),
    )
    assert weak.status_code == 403
    assert client.get("/v1/nowhere", headers=tenant.headers()).status_code == 404
    wrong_method = client.delete("/v1/jobs", headers=tenant.headers())
    assert wrong_method.status_code == 405
    assert wrong_method.mimetype == "application/problem+json"
    too_big = client.post(
        "/v1/jobs",
        data="x" * (1024 * 1024 + 1),
        content_type="text/plain",
        headers=tenant.headers(),
    )
    assert too_big.status_code == 413
    not_json = client.post(
        "/v1/jobs",
        data="type=echo",
        content_type="application/x-www-form-urlencoded",
        headers=tenant.headers(),
    )
    assert not_json.status_code == 415
    malformed = client.post(
        "/v1/jobs", data="{not json", content_type="application/json", headers=tenant.headers()
    )
    assert malformed.status_code == 400
    assert malformed.mimetype == "application/problem+json"


@pytest.mark.parametrize(
    "raw",
    [
        '{"type": "echo", "payload": {"message": NaN}}',
        '{"type": "echo", "payload": {"message": "\\u0000"}}',
        '{"type": "echo", "payload": {"message": "\\ud800"}}',
        "[" * 5000 + "]" * 5000,
    ],
)
def test_json_that_the_database_would_refuse_is_400(
    client: FlaskClient, tenant: TenantKeys, raw: str
) -> None:
    response = client.post(
        "/v1/jobs", data=raw, content_type="application/json", headers=tenant.headers()
    )
    assert response.status_code == 400, response.get_json()


def test_empty_body_is_fine_for_cancel(client: FlaskClient, tenant: TenantKeys) -> None:
    job = submit(
        client,
        tenant,
        {"type": "echo", "payload": {"message": "x"}, "run_at": "2099-01-01T00:00:00Z"},
    ).get_json()
    response = client.post(f"/v1/jobs/{job['id']}/cancel", headers=tenant.headers())
    assert response.status_code == 200


def test_list_filters_and_paginates_with_link(client: FlaskClient, tenant: TenantKeys) -> None:
    ids = [
        submit(client, tenant, {"type": "echo", "payload": {"message": str(i)}}).get_json()["id"]
        for i in range(5)
    ]
    submit(client, tenant, {"type": "hash", "payload": {"data": "x", "algorithm": "sha256"}})
    page = client.get("/v1/jobs?limit=2&type=echo", headers=tenant.headers("reader"))
    body = page.get_json()
    assert [j["id"] for j in body["data"]] == ids[::-1][:2]
    assert 'rel="next"' in page.headers["Link"]
    walked = [j["id"] for j in body["data"]]
    while body["next_cursor"]:
        body = client.get(
            f"/v1/jobs?limit=2&type=echo&cursor={body['next_cursor']}",
            headers=tenant.headers("reader"),
        ).get_json()
        walked += [j["id"] for j in body["data"]]
    assert walked == ids[::-1]
    assert (
        client.get("/v1/jobs?cursor=garbage", headers=tenant.headers()).get_json()["errors"][0][
            "field"
        ]
        == "query.cursor"
    )
    assert (
        client.get("/v1/jobs?limit=101", headers=tenant.headers()).get_json()["errors"][0]["field"]
        == "query.limit"
    )
    assert (
        client.get("/v1/jobs?status=queued&type=hash", headers=tenant.headers()).get_json()["data"][
            0
        ]["type"]
        == "hash"
    )


def test_job_types_lists_builtins_with_json_schemas(
    client: FlaskClient, tenant: TenantKeys
) -> None:
    data = client.get("/v1/job-types", headers=tenant.headers("reader")).get_json()["data"]
    by_name = {t["name"]: t for t in data}
    assert set(by_name) >= {"echo", "sleep", "fail", "hash"}
    assert by_name["sleep"]["payload_schema"]["properties"]["seconds"]["maximum"] == 3600
    assert by_name["echo"]["payload_schema"]["required"] == ["message"]


def test_meta_routes(client: FlaskClient) -> None:
    assert client.get("/healthz").get_json() == {"status": "ok"}
    ready = client.get("/readyz").get_json()
    assert ready["checks"]["database"] == "ok"
    assert ready["checks"]["broker"] == "ok"
    spec = json.loads(client.get("/openapi.json").data)
    assert "/v1/jobs" in spec["paths"] and "/v1/jobs/{job_id}/cancel" in spec["paths"]
    assert client.get("/docs/").status_code == 200
    for name, response in spec["components"]["responses"].items():
        assert list(response["content"]) == ["application/problem+json"], name
    assert set(spec["components"]["schemas"]["Problem"]["required"]) == {
        "type",
        "title",
        "status",
        "detail",
        "request_id",
    }


def test_metrics_report_queue_depth_and_age(client: FlaskClient, tenant: TenantKeys) -> None:
    def gauge(text: str, name: str) -> float:
        line = next(line for line in text.splitlines() if line.startswith(name + " "))
        return float(line.rsplit(" ", 1)[1])

    def scrape() -> str:
        client.application.extensions["hopper"].metrics._cached = None  # read afresh
        answer = client.get("/metrics")
        assert answer.status_code == 200
        assert answer.mimetype == "text/plain"
        return answer.get_data(as_text=True)

    due = 'hopper_jobs_waiting{queue="long",reason="capacity"}'
    queued_before = gauge(scrape(), due)
    submit(client, tenant, {"type": "sleep", "payload": {"seconds": 1}})
    after = scrape()
    assert gauge(after, "hopper_database_up") == 1
    assert gauge(after, due) == queued_before + 1
    assert gauge(after, 'hopper_queue_oldest_due_seconds{queue="long"}') >= 0
    assert 'hopper_http_request_duration_seconds_count{method="POST",route="/v1/jobs"' in after
    assert "hopper_webhook_deliveries_pending" in after


def test_request_metrics_name_no_series_after_what_a_client_sends(client: FlaskClient) -> None:
    """Any token may come as a method and any path as a URL: neither makes a series of its own."""
    assert client.open("/v1/jobs", method="BREW").status_code in (401, 405)
    assert client.get("/no-such-route-4f2a").status_code == 404
    scraped = client.get("/metrics").get_data(as_text=True)
    assert 'method="BREW"' not in scraped and "no-such-route-4f2a" not in scraped
    assert 'method="other"' in scraped and 'route="unmatched"' in scraped
