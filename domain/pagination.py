"""Cursors for newest-first lists. A cursor names the last item of the page before by the ULID
of its id (26 characters of Crockford's base32, in lower case): ids are time-ordered, so the next
page is the items with a smaller id. Clients treat it as opaque; its form is exact
(`CURSOR_PATTERN`), so that the OpenAPI document can say which strings a list takes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from domain.errors import FieldError, ValidationFailed
from domain.ids import ULID_PATTERN, is_ulid

T = TypeVar("T")
CURSOR_PATTERN = f"^{ULID_PATTERN}$"


@dataclass(frozen=True)
class Page(Generic[T]):
    items: Sequence[T]
    next_cursor: str | None


def encode_cursor(last_id: str) -> str:
    return last_id.partition("_")[2]


def decode_cursor(cursor: str, prefix: str) -> str:
    """The id, of the kind `prefix`, that the page before ended with."""
    if not is_ulid(cursor):
        raise ValidationFailed([FieldError("query.cursor", "Not a cursor this list gave out.")])
    return f"{prefix}_{cursor}"


def paginate(rows: Sequence[T], limit: int, key: str = "id") -> Page[T]:
    """``rows`` holds up to ``limit + 1`` items: the extra one only says that more exist."""
    items = rows[:limit]
    more = len(rows) > limit
    return Page(items, encode_cursor(getattr(items[-1], key)) if more and items else None)
