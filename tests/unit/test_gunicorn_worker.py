"""The web server's own refusals are problems, not HTML pages."""

from __future__ import annotations

import json

from gunicorn.http import errors

from hopper.gunicorn_worker import problem_bytes, status_for


def test_gunicorns_refusals_map_to_their_statuses() -> None:
    assert status_for(errors.LimitRequestLine(9000, 4094))[0] == 414
    assert status_for(errors.LimitRequestHeaders("too many"))[0] == 431
    assert status_for(errors.UnsupportedTransferCoding("gzip"))[0] == 501
    assert status_for(errors.InvalidRequestLine("x"))[0] == 400
    assert status_for(RuntimeError("bug"))[0] == 500


def test_a_refusal_is_a_problem_with_a_request_id() -> None:
    raw = problem_bytes(414, "URI Too Long")
    head, body = raw.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 414 URI Too Long\r\n")
    assert b"Content-Type: application/problem+json" in head
    problem = json.loads(body)
    assert problem["status"] == 414 and problem["type"].endswith("uri-too-long")
    assert f"X-Request-Id: {problem['request_id']}".encode() in head
    assert f"Content-Length: {len(body)}".encode() in head
