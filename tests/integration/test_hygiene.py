"""Request hygiene over the real app and services: security headers, no-store under /v1, CORS
from configuration (preflights answered before authentication), and one access-log line per
request carrying the request's id and tenant, with nothing secret in it."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
import structlog
from flask import Flask, Response
from flask.testing import FlaskClient

from api import auth, hygiene
from api.app import create_app
from domain.settings import Settings
from hopper.bootstrap import Container, bootstrap
from hopper.logging import configure_logging
from tests.factories import TenantKeys, make_tenant
from tests.services import real_env

ORIGIN = "https://app.example.com"
OTHER_ORIGIN = "https://admin.example.com"
EXPOSED = {
    "X-Request-Id",
    "Location",
    "ETag",
    "Retry-After",
    "X-RateLimit-Limit",
    "X-RateLimit-Remaining",
    "X-RateLimit-Reset",
    "Idempotent-Replayed",
    "Link",
}
REQUEST_HEADERS = {
    "Authorization",
    "Content-Type",
    "Idempotency-Key",
    "X-Request-Id",
    "If-None-Match",
}


@pytest.fixture(scope="module")
def cors_container(migrated_database: str) -> Iterator[Container]:
    settings = Settings.from_env(real_env(HOPPER_CORS_ORIGINS=f"{ORIGIN}, {OTHER_ORIGIN}"))
    wiring = bootstrap(settings, pool_size=2)
    yield wiring
    wiring.engine.dispose()


@pytest.fixture(scope="module")
def cors_app(cors_container: Container) -> Flask:
    return create_app(cors_container)


@pytest.fixture
def cors(cors_app: Flask) -> FlaskClient:
    return cors_app.test_client()


@pytest.fixture
def keys(cors_container: Container) -> TenantKeys:
    return make_tenant(cors_container.access)


@pytest.fixture
def access_log() -> Iterator[io.StringIO]:
    """The process's logging, configured as `hopper serve` does, into a buffer."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    stream = io.StringIO()
    configure_logging(Settings.from_env({"HOPPER_LOG_FORMAT": "json"}), "web", stream)
    structlog.configure(cache_logger_on_first_use=False)
    yield stream
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()
    logging.captureWarnings(False)
    root.handlers[:] = handlers
    root.setLevel(level)


def requests_logged(stream: io.StringIO) -> list[dict[str, Any]]:
    events = [json.loads(line) for line in stream.getvalue().splitlines()]
    return [e for e in events if e["event"] == "http_request"]


def cors_headers(response: Response) -> list[str]:
    return [name for name, _ in response.headers.items() if name.startswith("Access-Control-")]


def listed(value: str | None) -> set[str]:
    return {part.strip() for part in (value or "").split(",") if part.strip()}


def test_the_app_answers_preflights_before_authentication(cors_container: Container) -> None:
    hooks = create_app(cors_container).before_request_funcs[None]
    assert hygiene.preflight in hooks, "create_app does not register hygiene.preflight"
    assert hooks.index(hygiene.preflight) < hooks.index(auth.authenticate)


@pytest.mark.parametrize(
    ("method", "path", "role"),
    [
        ("GET", "/healthz", None),
        ("GET", "/readyz", None),
        ("GET", "/openapi.json", None),
        ("GET", "/v1/jobs", None),
        ("GET", "/v1/jobs", "reader"),
        ("GET", "/v1/no-such-route", "reader"),
        ("POST", "/v1/jobs", "reader"),
        ("GET", "/no-such-page", None),
    ],
)
def test_security_headers_on_every_response(
    cors: FlaskClient, keys: TenantKeys, method: str, path: str, role: str | None
) -> None:
    headers = keys.headers(role) if role else {}
    response = cors.open(path, method=method, headers=headers)
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert response.headers["Content-Security-Policy"] == (
        "default-src 'none'; frame-ancestors 'none'"
    )
    assert response.headers["X-Request-Id"]


@pytest.mark.parametrize("path", ["/docs/", "/docs/swagger-ui.css", "/docs"])
def test_the_docs_pages_may_load_their_own_scripts_and_styles(cors: FlaskClient, path: str) -> None:
    response = cors.get(path)
    assert response.status_code in (200, 301, 308)
    policy = response.headers["Content-Security-Policy"]
    assert "default-src 'self'" in policy and "default-src 'none'" not in policy
    assert "script-src 'self' 'unsafe-inline'" in policy
    assert "frame-ancestors 'none'" in policy
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_no_store_on_every_v1_response(cors: FlaskClient, keys: TenantKeys) -> None:
    submitted = cors.post(
        "/v1/jobs", json={"type": "echo", "payload": {"message": "x"}}, headers=keys.headers()
    )
    assert submitted.status_code == 202
    job_path = submitted.headers["Location"]
    first = cors.get(job_path, headers=keys.headers("reader"))
    not_modified = cors.get(
        job_path, headers={**keys.headers("reader"), "If-None-Match": first.headers["ETag"]}
    )
    responses = {
        "202": submitted,
        "200": first,
        "304": not_modified,
        "list": cors.get("/v1/jobs", headers=keys.headers("reader")),
        "401": cors.get("/v1/jobs"),
        "403": cors.get("/v1/webhook-endpoints", headers=keys.headers("reader")),
        "404": cors.get("/v1/jobs/job_nope", headers=keys.headers("reader")),
        "415": cors.post("/v1/jobs", data="x", content_type="text/plain", headers=keys.headers()),
    }
    assert not_modified.status_code == 304
    for name, response in responses.items():
        assert response.headers.get("Cache-Control") == "no-store", name


def test_responses_outside_v1_may_be_cached(cors: FlaskClient) -> None:
    for path in ("/healthz", "/openapi.json"):
        assert "no-store" not in cors.get(path).headers.get("Cache-Control", "")


def test_a_views_own_cache_control_stands(cors_app: Flask) -> None:
    with cors_app.test_request_context("/v1/jobs"):
        hygiene.assign_request_id()
        answer = hygiene.finish(Response("{}", headers={"Cache-Control": "private, max-age=5"}))
    assert answer.headers.getlist("Cache-Control") == ["private, max-age=5"]
    with cors_app.test_request_context("/v1/jobs"):
        hygiene.assign_request_id()
        assert hygiene.finish(Response("{}")).headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize("origin", [ORIGIN, OTHER_ORIGIN])
def test_an_allowed_origin_may_read_answers_and_their_headers(
    cors: FlaskClient, keys: TenantKeys, origin: str
) -> None:
    ok = cors.get("/v1/jobs", headers={**keys.headers("reader"), "Origin": origin})
    unauthenticated = cors.get("/v1/jobs", headers={"Origin": origin})
    assert ok.status_code == 200 and unauthenticated.status_code == 401
    for response in (ok, unauthenticated):
        assert response.headers["Access-Control-Allow-Origin"] == origin
        assert "Origin" in listed(response.headers.get("Vary"))
        assert listed(response.headers["Access-Control-Expose-Headers"]) == EXPOSED
        assert "Access-Control-Allow-Credentials" not in response.headers


@pytest.mark.parametrize(
    "origin",
    [
        "https://evil.example.com",
        "http://app.example.com",  # another scheme is another origin
        "https://app.example.com:8443",
        "https://app.example.com.evil.example",
        "null",
    ],
)
def test_other_origins_get_no_cors_headers(
    cors: FlaskClient, keys: TenantKeys, origin: str
) -> None:
    response = cors.get("/v1/jobs", headers={**keys.headers("reader"), "Origin": origin})
    assert response.status_code == 200
    assert not cors_headers(response)
    assert "Origin" in listed(response.headers.get("Vary"))  # caches must not mix the answers


def test_without_configured_origins_no_request_gets_cors_headers(
    client: FlaskClient, tenant: TenantKeys
) -> None:
    asked = client.get("/v1/jobs", headers={**tenant.headers("reader"), "Origin": ORIGIN})
    preflight = client.options(
        "/v1/jobs", headers={"Origin": ORIGIN, "Access-Control-Request-Method": "POST"}
    )
    assert asked.status_code == 200 and preflight.status_code == 401
    for response in (asked, preflight):
        assert not cors_headers(response)
        assert "Origin" not in listed(response.headers.get("Vary"))


@pytest.mark.parametrize(
    "path",
    [
        "/v1/jobs",
        "/v1/jobs/job_01J0000000000000000000000/cancel",
        "/v1/webhook-endpoints/whe_01J0000000000000000000000",
    ],
)
def test_a_preflight_from_an_allowed_origin_is_answered_without_a_key(
    cors: FlaskClient, path: str
) -> None:
    response = cors.options(
        path,
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type, idempotency-key",
            "X-Request-Id": "req-preflight-1",
        },
    )
    assert response.status_code == 204
    assert response.data == b""
    assert response.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert {"GET", "POST", "PATCH", "DELETE"} <= listed(
        response.headers["Access-Control-Allow-Methods"]
    )
    assert listed(response.headers["Access-Control-Allow-Headers"]) == REQUEST_HEADERS
    assert int(response.headers["Access-Control-Max-Age"]) > 0
    assert "Origin" in listed(response.headers.get("Vary"))
    assert response.headers["X-Request-Id"] == "req-preflight-1"
    assert "WWW-Authenticate" not in response.headers


def test_a_preflight_from_another_origin_goes_the_usual_way(cors: FlaskClient) -> None:
    response = cors.options(
        "/v1/jobs",
        headers={"Origin": "https://evil.example.com", "Access-Control-Request-Method": "POST"},
    )
    assert response.status_code == 401
    assert "WWW-Authenticate" in response.headers
    assert not cors_headers(response)


def test_an_options_request_that_is_not_a_preflight_needs_a_key(cors: FlaskClient) -> None:
    response = cors.options("/v1/jobs", headers={"Origin": ORIGIN})
    assert response.status_code == 401
    assert response.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert "Access-Control-Allow-Methods" not in response.headers


def test_one_access_line_per_request_with_its_context_and_no_secret(
    cors: FlaskClient, keys: TenantKeys, access_log: io.StringIO
) -> None:
    cors.get("/v1/jobs", headers={**keys.headers("reader"), "X-Request-Id": "req-hygiene-1"})
    cors.get("/healthz")
    cors.get(f"/v1/jobs/{keys.admin}", headers=keys.headers("reader"))
    cors.get("/v1/jobs/job_01J0000000000000000000000", headers=keys.headers("reader"))
    cors.post("/v1/jobs", json={}, headers=keys.headers("reader"))
    cors.get("/v1/jobs", headers={"Authorization": f"Bearer {keys.submitter[:-1]}x"})

    listing, health, key_in_path, missing, forbidden, refused = requests_logged(access_log)
    assert listing["request_id"] == "req-hygiene-1"
    assert listing["tenant_id"] == keys.tenant_id
    assert (listing["method"], listing["path"], listing["status"]) == ("GET", "/v1/jobs", 200)
    assert isinstance(listing["duration_ms"], float) and listing["duration_ms"] >= 0
    assert listing["process"] == "web" and listing["level"] == "info"
    # the context of one request never leaks into the next
    assert "tenant_id" not in health and health["request_id"] != "req-hygiene-1"
    assert health["request_id"].startswith("req_") and health["status"] == 200
    assert key_in_path["path"] == "/v1/jobs/[redacted]" and key_in_path["status"] == 404
    assert missing["job_id"] == "job_01J0000000000000000000000"
    assert (forbidden["status"], forbidden["tenant_id"]) == (403, keys.tenant_id)
    assert refused["status"] == 401 and "tenant_id" not in refused
    text = access_log.getvalue()
    for key in (keys.admin, keys.submitter, keys.reader, keys.submitter[:-1] + "x"):
        assert key not in text and key.removeprefix("hop_") not in text
