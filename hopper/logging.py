"""Structured logs on stderr: JSON lines, or readable lines when a terminal is attached.

Every line, Hopper's own and those of the libraries it uses, passes through ``redact`` just
before it is rendered, so no API key, webhook secret or Authorization header reaches a log.
"""

from __future__ import annotations

import functools
import logging
import re
import sys
from collections.abc import Mapping
from typing import Any, TextIO

import structlog

from domain.secrets import REDACTED
from domain.settings import Settings

_MAX_DEPTH = 8

# A value is redacted whole when its key's last word is one of these (``x_api_key``,
# ``webhook_secret``, ``Authorization``, ``accessToken``); ``key_id`` or ``job_id`` are not.
_SECRET_WORDS = ("authorization", "secret", "password", "passwd", "token", "apikey", "cookie")
_KEY_WORDS = frozenset({"key", "keys"})
_CAMEL_HUMP = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_NOT_WORD = re.compile(r"[^a-z0-9]+")

# Cheap first look: a string that contains none of these is left as it is.
_MAYBE_SECRET = re.compile(
    r"hop_|whsec_|bearer|authorization|://|passw|secret|token|api_?key", re.IGNORECASE
)
_SECRET_TEXT: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"hop_[A-Za-z0-9]{40}"), REDACTED),
    (re.compile(r"whsec_[A-Za-z0-9+/=]{20,}"), REDACTED),
    # the header, whatever its scheme: "Authorization: Basic abc", "'authorization': 'x'"
    (
        re.compile(
            r"""(authorization['"]?\s*[:=]\s*['"]?)(?:[A-Za-z]+\s+)?[^\s'",;}]+""",
            re.IGNORECASE,
        ),
        rf"\1{REDACTED}",
    ),
    (re.compile(r"""\b(bearer\s+)[^\s'",;}]+""", re.IGNORECASE), rf"\1{REDACTED}"),
    # "password=…", "?token=…", "api_key=…" in a message or a URL
    (
        re.compile(
            r"""\b([a-z0-9_.-]*(?:passw(?:or)?d|secret|token|api_?key)=)[^\s&'",;}]+""",
            re.IGNORECASE,
        ),
        rf"\1{REDACTED}",
    ),
    # the password in a URL: amqp://user:password@host
    (re.compile(r"(\b[a-z][a-z0-9+.-]*://[^/\s:@]*:)[^@\s/]+@", re.IGNORECASE), rf"\1{REDACTED}@"),
)


def configure_logging(settings: Settings, process: str, stream: TextIO | None = None) -> None:
    """Route structlog and the standard library's logging (every library's records) through one
    handler on ``stream`` (stderr by default)."""
    out = sys.stderr if stream is None else stream
    json_lines = settings.log_format == "json" or (
        settings.log_format == "auto" and not out.isatty()
    )
    renderer = (
        structlog.processors.JSONRenderer()
        if json_lines
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    shared = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _process(process),
    ]
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,  # a line below the level costs nothing more
            *shared,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(out)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                redact,  # after the exception became text, right before rendering
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level)
    logging.captureWarnings(True)  # warnings become log lines too, not stray text on stderr
    for noisy in ("alembic", "celery.worker.strategy", "amqp", "kombu"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))


def redact(_logger: object, _method: str, event: Mapping[str, Any]) -> dict[str, Any]:
    """A structlog processor: the value of any key named like a secret becomes ``[redacted]``,
    and so does anything in any text that looks like an API key, a webhook secret, an
    Authorization header or credentials in a URL. Values that are not JSON types become text."""
    return _clean_mapping(event, 0)


def scrub(text: str) -> str:
    """``text`` with every secret-looking part replaced by ``[redacted]``."""
    if not _MAYBE_SECRET.search(text):
        return text
    for pattern, replacement in _SECRET_TEXT:
        text = pattern.sub(replacement, text)
    return text


@functools.lru_cache(maxsize=4096)
def secret_name(name: str) -> bool:
    """Whether a value under this key name must never be logged."""
    words = _NOT_WORD.sub("_", _CAMEL_HUMP.sub("_", name).lower()).strip("_")
    last = words.rsplit("_", 1)[-1]
    return last in _KEY_WORDS or any(last.rstrip("s").endswith(w) for w in _SECRET_WORDS)


def _clean_mapping(mapping: Mapping[Any, Any], depth: int) -> dict[Any, Any]:
    return {
        key: REDACTED if value is not None and secret_name(str(key)) else _clean(value, depth + 1)
        for key, value in mapping.items()
    }


def _clean(value: Any, depth: int) -> Any:
    if isinstance(value, str):
        return scrub(value)
    if value is None or isinstance(value, bool | int | float):
        return value
    if depth > _MAX_DEPTH:
        return scrub(repr(value))
    if isinstance(value, Mapping):
        return _clean_mapping(value, depth)
    if isinstance(value, list | tuple | set | frozenset):
        return [_clean(item, depth + 1) for item in value]
    if isinstance(value, bytes | bytearray):
        return scrub(bytes(value).decode("utf-8", "replace"))
    if isinstance(value, BaseException):
        return scrub(repr(value))
    return scrub(str(value))


def _process(name: str) -> structlog.types.Processor:
    def add(_logger: object, _method: str, event: dict) -> dict:
        event.setdefault("process", name)
        return event

    return add
