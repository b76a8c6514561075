"""``domain.services.validation.job_errors``: a submitted job against its type, with field paths."""

from __future__ import annotations

import pytest

from domain.commands import SubmitJob
from domain.errors import FieldError
from domain.job_types import build_registry
from domain.services.validation import job_errors, metadata_errors

REGISTRY = build_registry()


def errors_of(command: SubmitJob, prefix: str = "") -> list[str]:
    return [e.field for e in job_errors(REGISTRY, command, prefix)]


def test_a_valid_job_has_no_errors() -> None:
    command = SubmitJob(type="echo", payload={"message": "hi"}, metadata={"team": "core"})
    assert job_errors(REGISTRY, command) == []


def test_unknown_type_is_reported_at_type_and_lists_the_known_types() -> None:
    (error,) = job_errors(REGISTRY, SubmitJob(type="nope", payload={"message": "hi"}))
    assert error.field == "type"
    for name in ("echo", "fail", "hash", "sleep"):
        assert name in error.message


def test_unknown_type_skips_payload_validation() -> None:
    command = SubmitJob(type="nope", payload={"whatever": 1})
    assert errors_of(command) == ["type"]


def test_payload_errors_carry_the_payload_path() -> None:
    assert errors_of(SubmitJob(type="sleep", payload={"seconds": -1})) == ["payload.seconds"]
    assert errors_of(SubmitJob(type="sleep", payload={"seconds": 1, "x": 0})) == ["payload.x"]


def test_batch_prefix_names_the_index() -> None:
    command = SubmitJob(type="sleep", payload={"seconds": 4000})
    assert errors_of(command, "jobs.3.") == ["jobs.3.payload.seconds"]
    assert errors_of(SubmitJob(type="nope"), "jobs.0.") == ["jobs.0.type"]
    bad_meta = SubmitJob(type="echo", payload={"message": "m"}, metadata={"k": "v" * 501})
    assert errors_of(bad_meta, "jobs.12.") == ["jobs.12.metadata.k"]


def test_payload_and_metadata_errors_are_reported_together() -> None:
    command = SubmitJob(type="echo", payload={}, metadata={"k" * 41: "v"})
    assert errors_of(command) == ["payload.message", f"metadata.{'k' * 41}"]


def test_metadata_at_the_limits_is_accepted() -> None:
    metadata = {f"{i:02d}" + "k" * 38: "v" * 500 for i in range(16)}
    assert all(len(k) == 40 for k in metadata)
    assert metadata_errors(metadata, "metadata") == []
    assert metadata_errors({}, "metadata") == []


def test_more_than_16_metadata_keys_is_refused() -> None:
    metadata = {f"k{i}": "v" for i in range(17)}
    assert metadata_errors(metadata, "metadata") == [FieldError("metadata", "At most 16 keys.")]


@pytest.mark.parametrize(
    ("metadata", "field"),
    [
        ({"k" * 41: "v"}, "metadata." + "k" * 41),
        ({"": "v"}, "metadata."),
        ({"k": "v" * 501}, "metadata.k"),
    ],
)
def test_metadata_key_and_value_lengths(metadata: dict[str, str], field: str) -> None:
    assert [e.field for e in metadata_errors(metadata, "metadata")] == [field]


def test_metadata_errors_use_the_given_field() -> None:
    errors = metadata_errors({"k": "v" * 501}, "jobs.2.metadata")
    assert [e.field for e in errors] == ["jobs.2.metadata.k"]
