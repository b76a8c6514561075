"""The front door's framing: when a request is whole, when it is handed on unread, and when a
chunked body grows past the route's limit."""

from __future__ import annotations

import pytest

from hopper.request_framing import HEAD_LIMIT, RequestBuffer, Verdict

LIMITS = {"/v1/jobs/batch": 100}


def limit(path: str) -> int:
    return LIMITS.get(path, 10)


def head(*fields: str, line: str = "POST /v1/jobs HTTP/1.1") -> bytes:
    return ("\r\n".join([line, "Host: x", *fields]) + "\r\n\r\n").encode()


def test_a_request_without_a_body_is_whole_with_its_head() -> None:
    buffer = RequestBuffer(limit)
    assert buffer.feed(b"GET /healthz HTTP/1.1\r\nHo") is Verdict.MORE
    assert buffer.feed(b"st: x\r\n\r\n") is Verdict.WHOLE
    assert buffer.data == b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"


def test_a_body_of_known_length_is_whole_once_every_byte_is_in() -> None:
    buffer = RequestBuffer(limit)
    assert buffer.feed(head("Content-Length: 5") + b"abcd") is Verdict.MORE
    assert buffer.feed(b"e") is Verdict.WHOLE
    assert buffer.received == len(head("Content-Length: 5")) + 5


def test_a_length_over_the_route_limit_is_handed_on_unread() -> None:
    assert RequestBuffer(limit).feed(head("Content-Length: 11")) is Verdict.HAND_ON
    batch = head("Content-Length: 11", line="POST /v1/jobs/batch?x=1 HTTP/1.1")
    assert RequestBuffer(limit).feed(batch) is Verdict.MORE  # the batch route takes 100
    absolute = head("Content-Length: 11", line="POST http://h/v1/jobs/batch HTTP/1.1")
    assert RequestBuffer(limit).feed(absolute) is Verdict.MORE


@pytest.mark.parametrize(
    "fields",
    [
        ("Content-Length: 1", "Content-Length: 1"),
        ("Content-Length: 1", "Transfer-Encoding: chunked"),
        ("Content-Length: -1",),
        ("Content-Length: 1e3",),
        ("Bad Name: x",),
        ("no colon",),
    ],
)
def test_framing_it_does_not_understand_goes_to_gunicorns_parser(fields: tuple[str, ...]) -> None:
    assert RequestBuffer(limit).feed(head(*fields)) is Verdict.HAND_ON


def test_bare_line_feeds_and_an_endless_head_are_handed_on() -> None:
    assert RequestBuffer(limit).feed(b"GET / HTTP/1.1\nHost: x\n\n") is Verdict.HAND_ON
    endless = RequestBuffer(limit)
    assert endless.feed(b"GET / HTTP/1.1\r\nX: " + b"a" * 1000) is Verdict.MORE
    assert endless.feed(b"a" * HEAD_LIMIT) is Verdict.HAND_ON


def test_a_chunked_body_is_whole_after_its_last_chunk_and_trailers() -> None:
    buffer = RequestBuffer(limit)
    assert buffer.feed(head("Transfer-Encoding: chunked") + b"3\r\nab") is Verdict.MORE
    assert buffer.feed(b"c\r\n4;ext=1\r\ndefg\r\n") is Verdict.MORE
    assert buffer.feed(b"0\r\nTrailer: t\r\n") is Verdict.MORE
    assert buffer.feed(b"\r\n") is Verdict.WHOLE
    assert buffer.data.endswith(b"3\r\nabc\r\n4;ext=1\r\ndefg\r\n0\r\nTrailer: t\r\n\r\n")


def test_a_chunked_body_past_the_limit_is_too_large_however_it_arrives() -> None:
    at_once = RequestBuffer(limit)
    assert at_once.feed(head("Transfer-Encoding: chunked") + b"b\r\n") is Verdict.TOO_LARGE
    piecemeal = RequestBuffer(limit)
    assert piecemeal.feed(head("Transfer-Encoding: chunked") + b"6\r\nabc") is Verdict.MORE
    assert piecemeal.feed(b"def\r\n") is Verdict.MORE  # 6 of 10: counted once, not per feed
    assert piecemeal.feed(b"4\r\nabcd\r\n") is Verdict.MORE
    assert piecemeal.feed(b"1\r\n") is Verdict.TOO_LARGE


@pytest.mark.parametrize(
    "codings", [("gzip",), ("gzip, chunked",), ("gzip", "chunked"), ("chunked, chunked",)]
)
def test_transfer_codings_other_than_chunked_alone_are_not_implemented(
    codings: tuple[str, ...],
) -> None:
    fields = [f"Transfer-Encoding: {c}" for c in codings]
    assert RequestBuffer(limit).feed(head(*fields)) is Verdict.UNSUPPORTED


def test_a_bad_chunk_size_is_handed_on() -> None:
    assert RequestBuffer(limit).feed(head("Transfer-Encoding: chunked") + b"zz\r\n") is (
        Verdict.HAND_ON
    )


def test_expect_100_continue_is_answered_by_the_front_and_its_line_removed() -> None:
    buffer = RequestBuffer(limit)
    assert buffer.feed(head("Expect: 100-Continue", "Content-Length: 2")) is Verdict.MORE
    assert buffer.continue_expected
    assert buffer.feed(b"{}") is Verdict.WHOLE
    assert b"expect" not in buffer.data.lower()
    assert buffer.data == head("Content-Length: 2") + b"{}"


def test_a_seed_of_pipelined_bytes_is_read_first() -> None:
    buffer = RequestBuffer(limit, data=b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n")
    assert buffer.feed() is Verdict.WHOLE
