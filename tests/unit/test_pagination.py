"""Opaque cursors and ``paginate``: ``domain.pagination``."""

from __future__ import annotations

import base64
from dataclasses import dataclass

import pytest

from domain.errors import ValidationFailed
from domain.ids import new_id
from domain.pagination import Page, decode_cursor, encode_cursor, paginate


@dataclass(frozen=True)
class Row:
    id: str


def test_cursor_round_trip() -> None:
    job_id = new_id("job")
    cursor = encode_cursor(job_id)
    assert decode_cursor(cursor, "job") == job_id


def test_cursor_is_opaque_and_url_safe() -> None:
    job_id = new_id("job")
    cursor = encode_cursor(job_id)
    assert job_id not in cursor
    assert "=" not in cursor
    assert set(cursor) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        "x",
        "!!!!",
        "not a cursor",
        "é",
        _b64("v2:" + "job_" + "0" * 26),
        _b64("job_" + "0" * 26),
        _b64("v1:"),
        _b64("v1:job_short"),
        _b64("v1:job_" + "0" * 25 + "-"),
        base64.urlsafe_b64encode(b"\xff\xfe\xfd").decode(),
    ],
)
def test_junk_cursors_are_refused_at_query_cursor(cursor: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        decode_cursor(cursor, "job")
    assert [e.field for e in caught.value.errors] == ["query.cursor"]


def test_a_cursor_of_another_list_is_refused() -> None:
    cursor = encode_cursor(new_id("key"))
    with pytest.raises(ValidationFailed) as caught:
        decode_cursor(cursor, "job")
    assert caught.value.errors[0].field == "query.cursor"
    assert decode_cursor(cursor, "key").startswith("key_")


def test_paginate_with_more_rows_than_the_limit_gives_a_cursor_to_the_last_item() -> None:
    rows = [Row(new_id("job")) for _ in range(4)]
    page = paginate(rows, 3)
    assert isinstance(page, Page)
    assert list(page.items) == rows[:3]
    assert page.next_cursor is not None
    assert decode_cursor(page.next_cursor, "job") == rows[2].id


@pytest.mark.parametrize("count", [0, 1, 3])
def test_paginate_at_or_under_the_limit_is_the_last_page(count: int) -> None:
    rows = [Row(new_id("job")) for _ in range(count)]
    page = paginate(rows, 3)
    assert list(page.items) == rows
    assert page.next_cursor is None


def test_paginate_with_another_key() -> None:
    @dataclass(frozen=True)
    class Other:
        ref: str

    rows = [Other(new_id("msg")), Other(new_id("msg"))]
    page = paginate(rows, 1, key="ref")
    assert decode_cursor(page.next_cursor or "", "msg") == rows[0].ref
