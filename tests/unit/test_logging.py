"""Logs: JSON lines (or console lines) through one handler, and no secret in any of them, whether
it comes from Hopper's structlog calls, a library's standard logging, an exception or a warning."""

from __future__ import annotations

import base64
import io
import json
import logging
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import structlog
from gunicorn.config import Config

from domain.auth import generate_key
from domain.settings import Settings
from domain.webhooks.signing import new_secret
from hopper.logging import REDACTED, configure_logging, redact, scrub, secret_name
from hopper.serve import RootLogger

# Fixed, so that test ids stay stable; the formats are checked against the generators below.
KEY = "hop_" + "Zq7" * 13 + "x"
SECRET = "whsec_" + base64.b64encode(bytes(range(200, 232))).decode()

Capture = Callable[..., io.StringIO]


@pytest.fixture
def capture() -> Iterator[Capture]:
    """Configures logging as a process does, into a buffer; puts everything back afterwards."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level

    def configure(log_format: str = "json", level: str = "INFO") -> io.StringIO:
        stream = io.StringIO()
        settings = Settings.from_env({"HOPPER_LOG_FORMAT": log_format, "HOPPER_LOG_LEVEL": level})
        configure_logging(settings, "unit", stream)
        structlog.configure(cache_logger_on_first_use=False)
        return stream

    yield configure
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()
    logging.captureWarnings(False)
    root.handlers[:] = handlers
    root.setLevel(level)


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    """Every line is one JSON event, or this fails."""
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def assert_clean(text: str) -> None:
    for secret in (KEY, SECRET, KEY.removeprefix("hop_"), SECRET.removeprefix("whsec_")):
        assert secret not in text


def test_every_key_and_webhook_secret_that_hopper_makes_is_scrubbed() -> None:
    for _ in range(500):
        key, secret = generate_key(), new_secret()
        assert scrub(f"{key} {secret}") == f"{REDACTED} {REDACTED}"


@pytest.mark.parametrize(
    "name",
    [
        "authorization",
        "Authorization",
        "HTTP_AUTHORIZATION",
        "secret",
        "secrets",
        "webhook_secret",
        "newSecret",
        "password",
        "db_password",
        "passwd",
        "token",
        "access_token",
        "accessToken",
        "refresh-token",
        "api_key",
        "apiKey",
        "apikey",
        "X-Api-Key",
        "key",
        "keys",
        "signing_key",
        "encryption_keys",
        "Set-Cookie",
    ],
)
def test_names_of_secrets(name: str) -> None:
    assert secret_name(name)


@pytest.mark.parametrize(
    "name",
    [
        "key_id",
        "actor_key_id",
        "job_id",
        "tenant_id",
        "request_id",
        "delivery_id",
        "event",
        "path",
        "status",
        "keyboard",
        "monkey",
        "token_count",
        "secret_prefix",
        "idempotency_key_hash",
    ],
)
def test_names_that_are_not_secrets(name: str) -> None:
    assert not secret_name(name)


def test_values_under_secret_names_are_redacted_at_any_depth() -> None:
    event = redact(
        None,
        "info",
        {
            "event": "calling",
            "authorization": "Basic Zm9vOmJhcg==",
            "api_key": "anything at all",
            "webhook_secret": 12345,
            "token": None,
            "key_id": "key_01J0000000000000000000000",
            "job_id": "job_01J0000000000000000000000",
            "headers": {"Authorization": "Basic Zm9vOmJhcg==", "Accept": "application/json"},
            "endpoints": [{"url": "http://127.0.0.1/hooks", "secret": "plain"}],
        },
    )
    assert event == {
        "event": "calling",
        "authorization": REDACTED,
        "api_key": REDACTED,
        "webhook_secret": REDACTED,
        "token": None,
        "key_id": "key_01J0000000000000000000000",
        "job_id": "job_01J0000000000000000000000",
        "headers": {"Authorization": REDACTED, "Accept": "application/json"},
        "endpoints": [{"url": "http://127.0.0.1/hooks", "secret": REDACTED}],
    }


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"key {KEY} used", f"key {REDACTED} used"),
        (f"/v1/jobs/{KEY}", f"/v1/jobs/{REDACTED}"),
        (f"x{KEY}y", f"x{REDACTED}y"),
        (f"rotated to {SECRET}.", f"rotated to {REDACTED}."),
        ("whsec_c2hvcnQ+c2VjcmV0L3ZhbHVlPT0=", REDACTED),
        ("Bearer some.opaque-token", f"Bearer {REDACTED}"),
        ("sent bearer abc123 twice", f"sent bearer {REDACTED} twice"),
        ("Authorization: Basic Zm9vOmJhcg==", f"Authorization: {REDACTED}"),
        ("{'Authorization': 'Bearer abc'}", f"{{'Authorization': '{REDACTED}'}}"),
        ('{"authorization": "Token xyz"}', f'{{"authorization": "{REDACTED}"}}'),
        ("GET /hooks?token=abc&x=1", f"GET /hooks?token={REDACTED}&x=1"),
        ("password=hunter2 next", f"password={REDACTED} next"),
        ("amqp://guest:guest@127.0.0.1:5672/v", f"amqp://guest:{REDACTED}@127.0.0.1:5672/v"),
    ],
)
def test_secrets_in_text_are_scrubbed(text: str, expected: str) -> None:
    assert scrub(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "job_started",
        "hop_tooShort",
        "hop_abcdefgh",  # a key's display prefix is meant to be shown
        "whsec_short",
        "key_01J0000000000000000000000",
        "/v1/webhook-endpoints/whe_01J0000000000000000000000/rotate-secret",
        "http://127.0.0.1:8000/v1/jobs",
        "Send an API key as `Authorization` in the header.",
        "the token was rejected",
    ],
)
def test_ordinary_text_is_left_alone(text: str) -> None:
    assert scrub(text) == text


def test_bytes_exceptions_and_other_objects_become_scrubbed_text() -> None:
    class Opaque:
        def __str__(self) -> str:
            return f"Opaque({KEY})"

    event = redact(
        None,
        "info",
        {
            "body": f"Bearer {KEY}".encode(),
            "error": ValueError(f"refused {SECRET}"),
            "thing": Opaque(),
            "pair": (KEY, 1),
            "deep": [[[[[[[[[[[KEY]]]]]]]]]]],
        },
    )
    assert_clean(json.dumps(event))
    assert event["pair"] == [REDACTED, 1]
    assert event["error"].startswith("ValueError(")


def test_json_lines_carry_the_context_and_redact_everything(capture: Capture) -> None:
    stream = capture()
    log = structlog.get_logger("tests.unit")
    structlog.contextvars.bind_contextvars(request_id="req-1", tenant_id="ten_1", token=KEY)
    log.info(f"made {KEY}", api_key=KEY, job_id="job_1", detail=f"whsec: {SECRET}")
    try:
        raise RuntimeError(f"could not use {KEY} or {SECRET}")
    except RuntimeError:
        log.exception("failed", headers={"Authorization": f"Bearer {KEY}"})
    log.debug("below the level", api_key=KEY)

    text = stream.getvalue()
    assert_clean(text)
    made, failed = lines(stream)
    assert made["event"] == f"made {REDACTED}"
    assert made["api_key"] == made["token"] == REDACTED
    assert made["detail"] == f"whsec: {REDACTED}"
    assert (made["request_id"], made["tenant_id"], made["job_id"]) == ("req-1", "ten_1", "job_1")
    assert made["process"] == "unit" and made["level"] == "info" and made["timestamp"]
    assert failed["headers"] == {"Authorization": REDACTED}
    assert "RuntimeError: could not use [redacted] or [redacted]" in failed["exception"]
    assert "Traceback" in failed["exception"]


def test_standard_logging_records_pass_through_the_same_redaction(capture: Capture) -> None:
    stream = capture()
    library = logging.getLogger("some.library")
    library.warning("sending %s", {"Authorization": f"Bearer {KEY}"})
    library.info("connected to %s", "amqp://guest:s3cret@127.0.0.1:5672/hopper")
    try:
        raise ConnectionError(f"rejected key {KEY}")
    except ConnectionError:
        library.exception("request failed with secret %s", SECRET)

    assert_clean(stream.getvalue())
    assert "s3cret" not in stream.getvalue()
    sending, connected, failed = lines(stream)
    assert sending["logger"] == "some.library" and sending["level"] == "warning"
    assert sending["event"] == f"sending {{'Authorization': '{REDACTED}'}}"
    assert connected["event"] == f"connected to amqp://guest:{REDACTED}@127.0.0.1:5672/hopper"
    assert failed["event"] == f"request failed with secret {REDACTED}"
    assert f"ConnectionError: rejected key {REDACTED}" in failed["exception"]


def test_warnings_become_json_lines(capture: Capture) -> None:
    stream = capture()
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.warn(f"deprecated use of {KEY}", DeprecationWarning, stacklevel=1)
    (line,) = lines(stream)
    assert line["logger"] == "py.warnings"
    assert_clean(stream.getvalue())


def test_console_lines_are_redacted_too(capture: Capture) -> None:
    stream = capture("console")
    structlog.get_logger("tests.unit").info("hello", authorization=f"Bearer {KEY}", note=SECRET)
    logging.getLogger("some.library").warning("key %s", KEY)
    text = stream.getvalue()
    assert "hello" in text and "key [redacted]" in text
    assert_clean(text)
    with pytest.raises(json.JSONDecodeError):
        lines(stream)


def test_gunicorn_lines_go_through_the_root_handler(capture: Capture) -> None:
    stream = capture()
    config = Config()
    config.set("loglevel", "warning")
    gunicorn_log = RootLogger(config)
    gunicorn_log.warning("worker said %s", f"Authorization: Bearer {KEY}")
    gunicorn_log.info("below gunicorn's level")

    assert not logging.getLogger("gunicorn.error").handlers
    (line,) = lines(stream)
    assert line["logger"] == "gunicorn.error"
    assert line["event"] == f"worker said Authorization: {REDACTED}"
    assert_clean(stream.getvalue())
