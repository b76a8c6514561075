"""Opaque, prefixed, time-ordered ids: ``domain.ids``."""

from __future__ import annotations

import time

import pytest

from domain.ids import PREFIXES, looks_like, new_id

CROCKFORD = set("0123456789abcdefghjkmnpqrstvwxyz")


def test_the_contract_prefixes() -> None:
    assert frozenset({"job", "att", "ten", "key", "whe", "msg", "dlv", "aud", "sch"}) == PREFIXES


@pytest.mark.parametrize("prefix", sorted(PREFIXES))
def test_new_id_shape(prefix: str) -> None:
    value = new_id(prefix)
    head, _, body = value.partition("_")
    assert head == prefix
    assert len(body) == 26
    assert set(body) <= CROCKFORD  # lower-case ULID
    assert looks_like(prefix, value)


def test_unknown_prefix_is_refused() -> None:
    with pytest.raises(ValueError, match="foo"):
        new_id("foo")


def test_ids_are_unique_and_sorted_in_creation_order() -> None:
    burst = [new_id("job") for _ in range(2000)]  # many share a millisecond
    assert len(set(burst)) == len(burst)
    assert burst == sorted(burst)


def test_ids_made_later_sort_later() -> None:
    earlier = new_id("job")
    time.sleep(0.003)
    later = new_id("job")
    assert earlier < later
    assert new_id("job") > later


@pytest.mark.parametrize(
    ("prefix", "value", "expected"),
    [
        ("job", "job_01jd4b2v6v3cz8f0f2m9k7q1xw", True),
        ("job", "att_01jd4b2v6v3cz8f0f2m9k7q1xw", False),
        ("job", "job_01jd4b2v6v3cz8f0f2m9k7q1x", False),
        ("job", "job_01jd4b2v6v3cz8f0f2m9k7q1xwz", False),
        ("job", "job_01jd4b2v6v3cz8f0f2m9k7q1-w", False),
        ("job", "job01jd4b2v6v3cz8f0f2m9k7q1xw", False),
        ("job", "", False),
        ("job", "job_", False),
        ("job", "../etc/passwd", False),
    ],
)
def test_looks_like(prefix: str, value: str, expected: bool) -> None:
    assert looks_like(prefix, value) is expected
