"""The built-in job types (handlers and payload validation) and the registry."""

from __future__ import annotations

import hashlib
import threading
import time
from datetime import timedelta
from typing import Any

import marshmallow as ma
import pytest

from domain import queues
from domain.context import CancellationToken, JobCanceled, JobContext
from domain.errors import FieldError
from domain.ids import new_id
from domain.job_types import JobType, Registry, build_registry
from domain.job_types.fail import DeliberateFailure
from domain.job_types.registry import UnknownJobType
from tests.unit.builders import NOW

REGISTRY = build_registry()
ECHO = REGISTRY.get("echo")
SLEEP = REGISTRY.get("sleep")
FAIL = REGISTRY.get("fail")
HASH = REGISTRY.get("hash")
KIB = 1024


def context(attempt: int = 1, token: CancellationToken | None = None) -> JobContext:
    return JobContext(
        job_id=new_id("job"),
        attempt=attempt,
        deadline=NOW + timedelta(seconds=30),
        cancellation=token or CancellationToken(),
    )


def run(job_type: JobType, payload: dict[str, Any], ctx: JobContext | None = None) -> Any:
    """Run a handler as the runner does: on the loaded payload."""
    return job_type.handler(job_type.load_payload(payload), ctx or context())


def fields(errors: list[FieldError]) -> list[str]:
    return [e.field for e in errors]


# -- handlers ---------------------------------------------------------------------------------


def test_echo_returns_its_message() -> None:
    message = "héllo \n ✓ " * 100
    result = run(ECHO, {"message": message})
    assert result == {"message": message}
    assert ECHO.validate_result(result) == []


class RecordingToken(CancellationToken):
    """A real token that also notes each wait a handler asks for: how long a handler means to
    sleep is then read, not timed, so a loaded machine cannot blur it."""

    def __init__(self) -> None:
        super().__init__()
        self.waits: list[float] = []

    def wait(self, seconds: float) -> bool:
        self.waits.append(seconds)
        return super().wait(seconds)


# A ceiling far below the sleeps asked for below (30 s, 3600 s), yet far above any stall of a
# loaded machine: a handler under it returned on its token, not at the end of its sleep.
EARLY = 15.0


def test_sleep_sleeps_about_the_seconds_asked_and_reports_them() -> None:
    token = RecordingToken()
    started = time.monotonic()
    result = run(SLEEP, {"seconds": 0.05}, context(token=token))
    elapsed = time.monotonic() - started
    assert token.waits == [0.05]
    assert elapsed >= 0.05
    assert 0.04 <= result["slept"] <= elapsed + 0.001
    assert SLEEP.validate_result(result) == []


def test_sleep_zero_returns_at_once() -> None:
    token = RecordingToken()
    started = time.monotonic()
    result = run(SLEEP, {"seconds": 0}, context(token=token))
    assert token.waits == [0]  # it asks for no wait at all
    assert 0 <= result["slept"] <= time.monotonic() - started + 0.001


def test_sleep_honours_a_cancellation_from_another_thread_quickly() -> None:
    token = CancellationToken()
    timer = threading.Timer(0.05, token.cancel)
    started = time.monotonic()
    timer.start()
    try:
        with pytest.raises(JobCanceled, match="canceled"):
            run(SLEEP, {"seconds": 30}, context(token=token))
    finally:
        timer.cancel()
    assert time.monotonic() - started < EARLY


def test_sleep_already_canceled_raises_at_once_with_the_reason() -> None:
    token = CancellationToken()
    token.cancel("timeout")
    started = time.monotonic()
    with pytest.raises(JobCanceled, match="timeout"):
        run(SLEEP, {"seconds": 3600}, context(token=token))
    assert time.monotonic() - started < EARLY


def test_cancellation_token_keeps_its_first_reason() -> None:
    token = CancellationToken()
    assert not token.requested
    assert token.reason is None
    assert token.wait(0) is False
    token.cancel("timeout")
    token.cancel("canceled")
    assert token.requested
    assert token.reason == "timeout"
    assert token.wait(10) is True


def test_fail_without_times_always_raises_its_message() -> None:
    for attempt in (1, 2, 25):
        with pytest.raises(DeliberateFailure, match=r"^kaput$"):
            run(FAIL, {"message": "kaput"}, context(attempt))


def test_fail_raises_on_its_first_times_attempts_then_succeeds() -> None:
    payload = {"message": "flaky", "times": 2}
    for attempt in (1, 2):
        with pytest.raises(DeliberateFailure, match="flaky"):
            run(FAIL, payload, context(attempt))
    assert run(FAIL, payload, context(3)) == {"attempt": 3}
    assert run(FAIL, payload, context(4)) == {"attempt": 4}


def test_fail_with_zero_times_succeeds_at_once() -> None:
    result = run(FAIL, {"message": "never", "times": 0}, context(1))
    assert result == {"attempt": 1}
    assert FAIL.validate_result(result) == []


@pytest.mark.parametrize("algorithm", ["sha256", "sha512", "blake2b"])
def test_hash_returns_the_hex_digest(algorithm: str) -> None:
    data = "Grüße, 世界"
    result = run(HASH, {"data": data, "algorithm": algorithm})
    assert result == {"digest": hashlib.new(algorithm, data.encode()).hexdigest()}
    assert HASH.validate_result(result) == []


def test_hash_of_known_vector() -> None:
    result = run(HASH, {"data": "abc", "algorithm": "sha256"})
    assert result["digest"] == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


# -- payload validation -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("job_type", "payload"),
    [
        (ECHO, {"message": ""}),
        (ECHO, {"message": "x" * 10_000}),
        (SLEEP, {"seconds": 0}),
        (SLEEP, {"seconds": 3600}),
        (SLEEP, {"seconds": 0.25}),
        (FAIL, {"message": "m"}),
        (FAIL, {"message": "m", "times": None}),
        (FAIL, {"message": "m", "times": 0}),
        (FAIL, {"message": "m", "times": 7}),
        (HASH, {"data": "", "algorithm": "sha256"}),
        (HASH, {"data": "x" * (512 * KIB), "algorithm": "sha512"}),
        (HASH, {"data": "é" * (256 * KIB), "algorithm": "blake2b"}),
    ],
)
def test_valid_payloads_pass(job_type: JobType, payload: dict[str, Any]) -> None:
    assert job_type.validate_payload(payload) == []


@pytest.mark.parametrize(
    ("job_type", "payload", "field"),
    [
        (ECHO, {}, "payload.message"),
        (ECHO, {"message": None}, "payload.message"),
        (ECHO, {"message": 5}, "payload.message"),
        (ECHO, {"message": "x" * 10_001}, "payload.message"),
        (SLEEP, {}, "payload.seconds"),
        (SLEEP, {"seconds": -0.001}, "payload.seconds"),
        (SLEEP, {"seconds": 3600.5}, "payload.seconds"),
        (SLEEP, {"seconds": True}, "payload.seconds"),
        (SLEEP, {"seconds": None}, "payload.seconds"),
        (SLEEP, {"seconds": float("nan")}, "payload.seconds"),
        (SLEEP, {"seconds": float("inf")}, "payload.seconds"),
        (SLEEP, {"seconds": [1]}, "payload.seconds"),
        (FAIL, {"times": 1}, "payload.message"),
        (FAIL, {"message": "m", "times": -1}, "payload.times"),
        (FAIL, {"message": "m", "times": 1.5}, "payload.times"),
        (FAIL, {"message": "m", "times": "2"}, "payload.times"),
        (FAIL, {"message": "m", "times": True}, "payload.times"),
        (HASH, {"algorithm": "sha256"}, "payload.data"),
        (HASH, {"data": "x"}, "payload.algorithm"),
        (HASH, {"data": "x", "algorithm": "md5"}, "payload.algorithm"),
        (HASH, {"data": "x", "algorithm": "SHA256"}, "payload.algorithm"),
        (HASH, {"data": 12, "algorithm": "sha256"}, "payload.data"),
    ],
)
def test_invalid_payloads_name_the_field(job_type: JobType, payload: Any, field: str) -> None:
    errors = job_type.validate_payload(payload)
    assert fields(errors) == [field]
    assert all(e.message for e in errors)


def test_sleep_seconds_must_be_a_json_number_not_a_numeric_string() -> None:
    # Contract, section 3: sleep's payload is {"seconds": number 0 to 3600}. The payload is
    # stored as submitted, so a string that passed validation is what the job shows.
    assert fields(SLEEP.validate_payload({"seconds": "5"})) == ["payload.seconds"]


def test_hash_data_over_512_kib_of_utf8_is_refused() -> None:
    over_in_bytes = "é" * (256 * KIB + 1)  # 262,145 characters but 524,290 bytes
    errors = HASH.validate_payload({"data": over_in_bytes, "algorithm": "sha256"})
    assert fields(errors) == ["payload.data"]
    assert "512 KiB" in errors[0].message
    one_byte_over = "x" * (512 * KIB + 1)
    assert fields(HASH.validate_payload({"data": one_byte_over, "algorithm": "sha256"})) == [
        "payload.data"
    ]


def test_hash_algorithm_error_lists_the_choices() -> None:
    (error,) = HASH.validate_payload({"data": "x", "algorithm": "md5"})
    for choice in ("sha256", "sha512", "blake2b"):
        assert choice in error.message


@pytest.mark.parametrize("job_type", [ECHO, SLEEP, FAIL, HASH], ids=lambda t: t.name)
def test_unknown_fields_are_refused_by_every_type(job_type: JobType) -> None:
    errors = job_type.validate_payload({"surprise": 1, "another": 2})
    assert {"payload.surprise", "payload.another"} <= set(fields(errors))


@pytest.mark.parametrize("payload", [None, [], ["message"], "text", 5, True])
def test_payload_that_is_not_an_object_is_refused_at_the_payload_field(payload: Any) -> None:
    assert ECHO.validate_payload(payload) == [FieldError("payload", "Must be a JSON object.")]


def test_validate_payload_uses_the_given_prefix() -> None:
    errors = SLEEP.validate_payload({"seconds": -1}, prefix="jobs.3.payload")
    assert fields(errors) == ["jobs.3.payload.seconds"]
    assert fields(SLEEP.validate_payload(None, prefix="jobs.0.payload")) == ["jobs.0.payload"]


def test_several_errors_are_all_reported() -> None:
    errors = HASH.validate_payload({"data": 1, "algorithm": "md5", "extra": True})
    assert sorted(fields(errors)) == ["payload.algorithm", "payload.data", "payload.extra"]


def test_nested_schema_errors_flatten_to_dotted_paths() -> None:
    class Inner(ma.Schema):
        n = ma.fields.Integer(required=True, strict=True)

    class Outer(ma.Schema):
        inner = ma.fields.Nested(Inner, required=True)
        items = ma.fields.List(ma.fields.Integer(strict=True), required=True)

        @ma.validates_schema
        def whole(self, data: dict[str, Any], **kwargs: Any) -> None:
            raise ma.ValidationError("The whole payload is wrong.")

    job_type = _custom_type("nested", payload_schema=Outer)
    errors = job_type.validate_payload({"inner": {"n": "x"}, "items": [1, "two"]})
    assert set(fields(errors)) == {"payload.inner.n", "payload.items.1"}
    errors = job_type.validate_payload({"inner": {"n": 1}, "items": [1]})
    assert errors == [FieldError("payload", "The whole payload is wrong.")]


# -- result validation ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("job_type", "result", "field"),
    [
        (ECHO, {}, "result.message"),
        (ECHO, {"message": 1}, "result.message"),
        (SLEEP, {"slept": "long"}, "result.slept"),
        (FAIL, {"attempt": "one"}, "result.attempt"),
        (HASH, {"digest": "ab", "extra": 1}, "result.extra"),
        (HASH, ["ab"], "result"),
        (HASH, None, "result"),
    ],
)
def test_results_that_break_the_result_schema_name_the_field(
    job_type: JobType, result: Any, field: str
) -> None:
    assert fields(job_type.validate_result(result)) == [field]


# -- the registry -----------------------------------------------------------------------------


def _custom_type(name: str, queue: str = "default", **overrides: Any) -> JobType:
    class Empty(ma.Schema):
        pass

    values: dict[str, Any] = {
        "name": name,
        "description": f"The {name} type.",
        "queue": queue,
        "payload_schema": Empty,
        "result_schema": Empty,
        "handler": lambda payload, ctx: {},
    }
    values.update(overrides)
    return JobType(**values)


def test_built_in_types_their_queues_and_defaults() -> None:
    assert [t.name for t in REGISTRY] == ["echo", "fail", "hash", "http", "sleep", "stubborn"]
    assert ECHO.queue == queues.DEFAULT
    assert FAIL.queue == queues.DEFAULT
    assert HASH.queue == queues.DEFAULT
    assert SLEEP.queue == queues.LONG
    assert REGISTRY.get("http").queue == queues.HTTP
    assert REGISTRY.queues == frozenset({"default", "long", "http"})
    assert REGISTRY.queues <= set(queues.ALL_QUEUES)
    for job_type in REGISTRY:
        assert 1 <= job_type.default_timeout_seconds <= 86_400
        assert 1 <= job_type.default_max_attempts <= 25
        assert job_type.description
    # A sleep of the longest allowed length fits in its default timeout.
    assert SLEEP.default_timeout_seconds > 3600


def test_registering_a_name_twice_is_refused() -> None:
    registry = Registry()
    registry.register(_custom_type("thing"))
    with pytest.raises(ValueError, match="thing"):
        registry.register(_custom_type("thing", queue="other"))
    assert registry.get("thing").queue == "default"


def test_build_registry_makes_a_fresh_registry_each_time() -> None:
    first = build_registry()
    first.register(_custom_type("extra"))
    assert "extra" not in build_registry()


def test_unknown_type_lookup() -> None:
    registry = build_registry()
    assert "nope" not in registry
    assert "echo" in registry
    assert 42 not in registry
    with pytest.raises(UnknownJobType):
        registry.get("nope")
    with pytest.raises(KeyError):
        registry.get("nope")


def test_registry_iterates_by_name_and_collects_queues() -> None:
    registry = Registry()
    registry.register(_custom_type("zeta", queue="slow"))
    registry.register(_custom_type("alpha", queue="fast"))
    registry.register(_custom_type("mid", queue="fast"))
    assert [t.name for t in registry] == ["alpha", "mid", "zeta"]
    assert registry.queues == frozenset({"fast", "slow"})
    assert Registry().queues == frozenset()
