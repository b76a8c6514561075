"""Opaque cursors and ``paginate``: ``domain.pagination``."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest

from domain.errors import ValidationFailed
from domain.ids import new_id
from domain.pagination import CURSOR_PATTERN, Page, decode_cursor, encode_cursor, paginate


@dataclass(frozen=True)
class Row:
    id: str


def test_cursor_round_trip() -> None:
    job_id = new_id("job")
    cursor = encode_cursor(job_id)
    assert decode_cursor(cursor, "job") == job_id


def test_cursor_is_the_ulid_of_the_last_id_in_the_documented_form() -> None:
    job_id = new_id("job")
    cursor = encode_cursor(job_id)
    assert job_id == f"job_{cursor}"
    assert re.fullmatch(CURSOR_PATTERN, cursor)


@pytest.mark.parametrize(
    "cursor",
    [
        "x",
        "!!!!",
        "not a cursor",
        "é" * 26,
        "0" * 25,
        "0" * 27,
        "8" + "0" * 25,  # past the largest ULID
        "0" * 25 + "u",  # not in Crockford's alphabet
        "0" * 25 + "A",  # upper case
        "0" * 26 + "\n",
        "job_" + "0" * 26,
    ],
)
def test_junk_cursors_are_refused_at_query_cursor(cursor: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        decode_cursor(cursor, "job")
    assert [e.field for e in caught.value.errors] == ["query.cursor"]


def test_a_cursor_names_a_point_in_time_order_for_the_list_that_reads_it() -> None:
    key_id = new_id("key")
    cursor = encode_cursor(key_id)
    assert decode_cursor(cursor, "key") == key_id
    assert decode_cursor(cursor, "job") == f"job_{cursor}"


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
