"""Opaque cursors for newest-first lists: a cursor names the last id of the page before."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from domain.errors import FieldError, ValidationFailed
from domain.ids import looks_like

T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[T]):
    items: Sequence[T]
    next_cursor: str | None


def encode_cursor(last_id: str) -> str:
    return base64.urlsafe_b64encode(f"v1:{last_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str, prefix: str) -> str:
    invalid = ValidationFailed([FieldError("query.cursor", "Not a cursor this list gave out.")])
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise invalid from None
    version, _, last_id = raw.partition(":")
    if version != "v1" or not looks_like(prefix, last_id):
        raise invalid
    return last_id


def paginate(rows: Sequence[T], limit: int, key: str = "id") -> Page[T]:
    """``rows`` holds up to ``limit + 1`` items: the extra one only says that more exist."""
    items = rows[:limit]
    more = len(rows) > limit
    return Page(items, encode_cursor(getattr(items[-1], key)) if more and items else None)
