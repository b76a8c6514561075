"""Hostile inputs against a live `hopper serve`, as an outsider probing it would send them:
every one is refused with a problem of the right status, none is a 5xx, and no answer points
anywhere the client named."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator

import pytest
import requests

from tests.services import real_env
from tests.stack import Stack

BIG = "1" + "0" * 309  # 10^309: no double holds it
SLEEP = '{"type": "sleep", "payload": {"seconds": %s}}'


@pytest.fixture(scope="module")
def stack(migrated_database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    running = Stack(real_env(), tmp_path_factory.mktemp("hostile"))
    try:
        running.web()
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def keys(stack: Stack) -> dict[str, str]:
    return stack.new_tenant()


# (name, method, path, body as sent, status, field the 422 names)
BODIES = [
    (
        "duplicate keys",
        "POST",
        "/v1/jobs",
        '{"type": "echo", "type": "sleep", "payload": {}}',
        400,
        None,
    ),
    (
        "duplicate nested",
        "POST",
        "/v1/jobs",
        '{"type": "echo", "payload": {"message": "a", "message": "b"}}',
        400,
        None,
    ),
    ("10^309", "POST", "/v1/jobs", SLEEP % BIG, 422, "payload.seconds"),
    ("-10^400", "POST", "/v1/jobs", SLEEP % ("-1" + "0" * 400), 422, "payload.seconds"),
    ("1e400", "POST", "/v1/jobs", SLEEP % "1e400", 422, "payload.seconds"),
    (
        "10^309 in a batch",
        "POST",
        "/v1/jobs/batch",
        '{"jobs": [%s]}' % (SLEEP % BIG),
        422,
        "jobs.0.payload.seconds",
    ),
    (
        "10^309 in an echo",
        "POST",
        "/v1/jobs",
        f'{{"type": "echo", "payload": {{"message": "m"}}, "max_attempts": {BIG}}}',
        422,
        "max_attempts",
    ),
    ("NaN", "POST", "/v1/jobs", SLEEP % "NaN", 400, None),
    ("Infinity", "POST", "/v1/jobs", SLEEP % "Infinity", 400, None),
    ("NUL", "POST", "/v1/jobs", '{"type": "echo", "payload": {"message": "a\\u0000b"}}', 400, None),
    (
        "lone surrogate",
        "POST",
        "/v1/jobs",
        '{"type": "echo", "payload": {"message": "\\ud800"}}',
        400,
        None,
    ),
    (
        "deep nesting",
        "POST",
        "/v1/jobs",
        '{"type": "echo", "payload": {"message": ' + "[" * 200 + "]" * 200 + "}}",
        400,
        None,
    ),
    (
        "mass assignment",
        "POST",
        "/v1/jobs",
        '{"type": "echo", "payload": {"message": "m"}, "status": "succeeded"}',
        422,
        "status",
    ),
    ("unknown type", "POST", "/v1/jobs", '{"type": "rm -rf", "payload": {}}', 422, "type"),
    ("not JSON", "POST", "/v1/jobs", "{'type': 'echo'}", 400, None),
    (
        "key with a past expiry",
        "POST",
        "/v1/api-keys",
        '{"name": "n", "role": "admin", "expires_at": "2001-01-01T00:00:00Z"}',
        422,
        "expires_at",
    ),
]
QUERIES = [
    ("SQL in a filter", "/v1/jobs?status=' OR 1=1 --", 422, "query.status"),
    ("limit 10^309", f"/v1/jobs?limit={BIG}", 422, "query.limit"),
    ("limit 1e400", "/v1/jobs?limit=1e400", 422, "query.limit"),
    ("cursor 0", "/v1/jobs?cursor=0", 422, "query.cursor"),
    ("date garbage", "/v1/jobs?created_after=yesterday", 422, "query.created_after"),
    ("NUL in a query", "/v1/jobs?type=a%00b", 422, "query.type"),
    ("traversal", "/v1/jobs/..%2F..%2Fetc%2Fpasswd", 404, None),
    ("another id form", "/v1/jobs/job_' OR '1'='1", 404, None),
]


def check_problem(response: requests.Response, status: int, field: str | None) -> None:
    assert response.status_code == status, response.text[:300]
    assert response.headers["Content-Type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["status"] == status and problem["request_id"]
    assert "Traceback" not in response.text and "sqlalchemy" not in response.text.lower()
    if field is not None:
        assert field in [e["field"] for e in problem["errors"]], problem


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "field"),
    [r[1:] for r in BODIES],
    ids=[r[0] for r in BODIES],
)
def test_hostile_bodies_are_refused_as_problems(
    stack: Stack,
    keys: dict[str, str],
    method: str,
    path: str,
    body: str,
    status: int,
    field: str | None,
) -> None:
    response = stack.request(
        method,
        path,
        keys["admin"],
        data=body.encode("utf-8", "surrogatepass"),
        headers={"Content-Type": "application/json"},
    )
    check_problem(response, status, field)


@pytest.mark.parametrize(
    ("path", "status", "field"), [r[1:] for r in QUERIES], ids=[r[0] for r in QUERIES]
)
def test_hostile_queries_are_refused_as_problems(
    stack: Stack, keys: dict[str, str], path: str, status: int, field: str | None
) -> None:
    check_problem(stack.request("GET", path, keys["admin"]), status, field)


def test_a_huge_number_in_a_long_poll_is_refused(stack: Stack, keys: dict[str, str]) -> None:
    job = stack.request(
        "POST", "/v1/jobs", keys["submitter"], json={"type": "echo", "payload": {"message": "m"}}
    ).json()
    check_problem(
        stack.request("GET", f"/v1/jobs/{job['id']}?wait={BIG}", keys["reader"]), 422, "query.wait"
    )


def test_links_are_never_built_from_the_clients_host_or_forwarded_headers(
    stack: Stack, keys: dict[str, str]
) -> None:
    for _ in range(2):
        stack.request(
            "POST",
            "/v1/jobs",
            keys["submitter"],
            json={"type": "echo", "payload": {"message": "m"}},
        )
    spoofed = {
        "Host": "evil.example",
        "X-Forwarded-Host": "evil.example",
        "X-Forwarded-Proto": "https",
    }
    listed = stack.request("GET", "/v1/jobs?limit=1", keys["reader"], headers=spoofed)
    assert listed.status_code == 200
    assert listed.headers["Link"].startswith("</v1/jobs?") and "evil" not in listed.headers["Link"]
    created = stack.request(
        "POST",
        "/v1/jobs",
        keys["submitter"],
        headers=spoofed,
        json={"type": "echo", "payload": {"message": "m"}},
    )
    assert created.headers["Location"].startswith("/v1/jobs/job_")


def test_no_answer_names_the_server_and_lists_carry_no_retry_after(
    stack: Stack, keys: dict[str, str]
) -> None:
    for path in ("/healthz", "/v1/jobs", "/v1/nowhere"):
        response = stack.request("GET", path, keys["reader"])
        assert "Server" not in response.headers, (path, response.headers)
    listed = stack.request("GET", "/v1/jobs", keys["reader"])
    assert listed.status_code == 200 and "Retry-After" not in listed.headers
    assert "X-RateLimit-Limit" in listed.headers  # the limiter did run on it
    job = stack.request(
        "POST", "/v1/jobs", keys["submitter"], json={"type": "sleep", "payload": {"seconds": 1}}
    ).json()
    polled = stack.request("GET", f"/v1/jobs/{job['id']}", keys["reader"])
    assert polled.headers["Retry-After"] == "1"  # the poll hint, not the limiter's window


def raw(stack: Stack, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", stack.port), timeout=10) as sock:
        sock.sendall(request)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


@pytest.mark.parametrize(
    ("coding", "body", "status"),
    [
        ("chunked", b"%x\r\n" % (2 * 1024 * 1024) + b"x" * 1000, b"413"),
        ("gzip, chunked", b"2\r\n{}\r\n0\r\n\r\n", b"501"),
        ("gzip", b"{}", b"501"),
    ],
)
def test_transfer_codings_answered_by_the_web_server(
    stack: Stack, keys: dict[str, str], coding: str, body: bytes, status: bytes
) -> None:
    head = (
        f"POST /v1/jobs HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer {keys['submitter']}\r\n"
        f"Content-Type: application/json\r\nTransfer-Encoding: {coding}\r\n"
        "Connection: close\r\n\r\n"
    )
    answer = raw(stack, head.encode() + body)
    assert answer.startswith(b"HTTP/1.1 " + status), answer[:200]
    assert json.loads(answer.split(b"\r\n\r\n", 1)[1])["status"] == int(status)
