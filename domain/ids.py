"""Opaque, prefixed, time-ordered ids (``job_01j…``): a ULID in lower case behind a type prefix.

Ids sort in creation order, which the cursor pagination relies on.
"""

from ulid import ULID

PREFIXES = frozenset({"job", "att", "ten", "key", "whe", "msg", "dlv", "aud"})


def new_id(prefix: str) -> str:
    if prefix not in PREFIXES:
        raise ValueError(f"unknown id prefix {prefix!r}")
    return f"{prefix}_{str(ULID()).lower()}"


def looks_like(prefix: str, value: str) -> bool:
    """True when ``value`` has the shape of an id of this kind (cheap, no database)."""
    head, _, body = value.partition("_")
    return head == prefix and len(body) == 26 and body.isalnum()
