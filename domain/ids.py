"""Opaque, prefixed, time-ordered ids (``job_01j…``): a ULID in lower case behind a type prefix.

Ids sort in creation order, which the cursor pagination relies on.
"""

import re

from ulid import ULID

# A ULID as Crockford's base32 writes it, in lower case: 26 characters, the first at most 7.
ULID_PATTERN = "[0-7][0-9a-hjkmnp-tv-z]{25}"
_ULID = re.compile(ULID_PATTERN)
PREFIXES = frozenset({"job", "att", "ten", "key", "whe", "msg", "dlv", "aud", "sch"})


def new_id(prefix: str) -> str:
    if prefix not in PREFIXES:
        raise ValueError(f"unknown id prefix {prefix!r}")
    return f"{prefix}_{str(ULID()).lower()}"


def looks_like(prefix: str, value: str) -> bool:
    """True when ``value`` has the shape of an id of this kind (cheap, no database)."""
    head, _, body = value.partition("_")
    return head == prefix and is_ulid(body)


def is_ulid(value: str) -> bool:
    return _ULID.fullmatch(value) is not None
