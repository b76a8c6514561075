"""The ``http`` type's payload: what may be sent, checked before the job is accepted."""

from __future__ import annotations

import json
import re
from typing import Any, ClassVar
from urllib.parse import urlsplit

import marshmallow as ma

from domain.job_types.fields import FullMatch, JsonNumber
from domain.url_form import HTTP_URL_PATTERN

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
MAX_URL_CHARS = 2048
MAX_HEADERS = 50
MAX_HEADER_NAME_CHARS = 100
MAX_HEADER_VALUE_CHARS = 8 * 1024
MAX_TIMEOUT_SECONDS = 60
MIN_TIMEOUT_SECONDS = 0.1
DEFAULT_TIMEOUT_SECONDS = 30

# RFC 9110 §5.6.2: a field name is a token.
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# RFC 9110 §5.5: a field value is tabs, spaces, visible ASCII and obs-text. Anything else either
# splits the header (CR, LF), is cut by servers (NUL), or cannot be encoded on the wire at all.
_FIELD_VALUE = re.compile(r"[\t\x20-\x7e\x80-\xff]*")
_URL_FORBIDDEN = re.compile(r"[\x00-\x20\x7f]")

_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "proxy-authenticate",
        "proxy-authorization",
    }
)
_SET_BY_HOPPER = frozenset({"user-agent", "webhook-id", "webhook-timestamp", "webhook-signature"})


def _check_url(url: str) -> None:
    problem = _url_problem(url)
    if problem:
        raise ma.ValidationError(problem)


def _url_problem(url: str) -> str | None:
    if len(url) > MAX_URL_CHARS:
        return f"The URL is longer than {MAX_URL_CHARS} characters."
    if _URL_FORBIDDEN.search(url):
        return "The URL may not contain spaces or control characters."
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (raises on a port that is not a number in range)
    except ValueError:
        return "Not a valid URL."
    if parts.scheme not in ("http", "https"):
        return "The URL must be an absolute http or https URL."
    if not parts.hostname:
        return "The URL must name a host."
    if "@" in parts.netloc:
        return "The URL may not carry a user name or password."
    if "#" in url:
        return "The URL may not have a fragment (#...)."
    return None


def _shown(name: str) -> str:
    return repr(name) if len(name) <= 40 else repr(name[:40]) + "..."


def header_problems(name: Any, value: Any) -> list[str]:
    """What is wrong with one header as given (empty when nothing); never quotes its value."""
    if not isinstance(name, str) or not _TOKEN.fullmatch(name):
        return [f"The header name {_shown(str(name))} is not a valid HTTP field name (a token)."]
    if len(name) > MAX_HEADER_NAME_CHARS:
        return [
            f"The header name {_shown(name)} is longer than {MAX_HEADER_NAME_CHARS} characters."
        ]
    if refused := reserved_reason(name.lower()):
        return [f"The header {name!r} may not be given: {refused}."]
    if not isinstance(value, str):
        return [f"The value of header {name!r} must be a string."]
    if len(value) > MAX_HEADER_VALUE_CHARS:
        return [f"The value of header {name!r} is longer than 8 KiB."]
    if not _FIELD_VALUE.fullmatch(value):
        return [
            f"The value of header {name!r} may hold only tabs, spaces, visible ASCII and "
            "Latin-1 characters (no CR, LF, NUL or other control characters)."
        ]
    return []


def reserved_reason(lower: str) -> str | None:
    """Why Hopper keeps a header (by its lower-cased name) to itself; None if it does not."""
    if lower == "host":
        return "the host comes from the URL"
    if lower in _HOP_BY_HOP:
        return "it is a hop-by-hop header"
    if lower == "content-length":
        return "the length comes from the body"
    if lower.startswith("hopper-") or lower in _SET_BY_HOPPER:
        return "Hopper sets it"
    return None


def duplicate_names(names: list[str]) -> list[str]:
    """The names given more than once, ignoring case (each once, as first repeated)."""
    seen: set[str] = set()
    repeated: list[str] = []
    for name in names:
        if name.lower() in seen and name.lower() not in {r.lower() for r in repeated}:
            repeated.append(name)
        seen.add(name.lower())
    return repeated


class HeaderMap(ma.fields.Field):
    """A JSON object of header names to string values, checked one header at a time."""

    # The field's JSON Schema, as the API documents it (`api.openapi.own_json_schema`).
    json_schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "patternProperties": {
            f"^{_TOKEN.pattern.removesuffix('+')}{{1,{MAX_HEADER_NAME_CHARS}}}$": {
                "type": "string",
                "maxLength": MAX_HEADER_VALUE_CHARS,
                "pattern": f"^{_FIELD_VALUE.pattern}$",
            }
        },
        "additionalProperties": False,
        "maxProperties": MAX_HEADERS,
        "description": "Header names (RFC 9110 tokens) to values. Host, hop-by-hop, "
        "Content-Length, User-Agent, Hopper-* and webhook-* headers are Hopper's to set, and a "
        "name may appear once (in headers and secret_headers together, ignoring case).",
    }

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> dict:
        if not isinstance(value, dict):
            raise ma.ValidationError("Must be a JSON object of header names to string values.")
        if len(value) > MAX_HEADERS:
            raise ma.ValidationError(f"At most {MAX_HEADERS} headers may be given.")
        problems = [p for name, text in value.items() for p in header_problems(name, text)]
        problems += [f"The header {n!r} is given more than once." for n in duplicate_names(value)]
        if problems:
            raise ma.ValidationError(problems)
        return dict(value)


def _check_body(body: Any) -> None:
    try:
        body_text(body)
    except UnicodeEncodeError:  # before ValueError, which it is
        raise ma.ValidationError("The body must be valid Unicode (no lone surrogates).") from None
    except (TypeError, ValueError, RecursionError):
        raise ma.ValidationError("The body must be JSON (no NaN or infinity).") from None


def body_text(body: Any) -> str | None:
    """The body as it is sent: a string as it is, anything else as compact JSON; None: none."""
    if body is None:
        return None
    if isinstance(body, str):
        text = body
    else:
        text = json.dumps(body, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    text.encode("utf-8")  # a lone surrogate cannot be sent: refuse it here, not in the worker
    return text


class HttpPayload(ma.Schema):
    url = ma.fields.String(
        required=True,
        validate=[
            ma.validate.Length(min=1, max=MAX_URL_CHARS),
            FullMatch(
                HTTP_URL_PATTERN,
                error="Not an absolute http(s) URL (RFC 3986; a host name in ASCII, punycode "
                "for an international one; no user name, password or fragment).",
            ),
            _check_url,
        ],
    )
    method = ma.fields.String(load_default="POST", validate=ma.validate.OneOf(METHODS))
    headers = HeaderMap(load_default=dict)
    secret_headers = HeaderMap(load_default=dict)
    body = ma.fields.Raw(
        load_default=None,
        allow_none=True,
        validate=_check_body,
        metadata={"description": "A string is sent as text, anything else as JSON; none with GET."},
    )
    timeout_seconds = JsonNumber(
        load_default=DEFAULT_TIMEOUT_SECONDS,
        validate=ma.validate.Range(min=MIN_TIMEOUT_SECONDS, max=MAX_TIMEOUT_SECONDS),
    )

    @ma.validates_schema
    def _headers_together(self, data: dict[str, Any], **kwargs: Any) -> None:
        headers, secret = data.get("headers", {}), data.get("secret_headers", {})
        if len(headers) + len(secret) > MAX_HEADERS:
            raise ma.ValidationError(
                f"Together with headers, at most {MAX_HEADERS} headers may be given.",
                field_name="secret_headers",
            )
        both = duplicate_names([*headers, *secret])
        if both:
            names = ", ".join(repr(name) for name in both)
            raise ma.ValidationError(
                f"Given in both headers and secret_headers: {names}.", field_name="secret_headers"
            )

    @ma.validates_schema
    def _no_body_on_get(self, data: dict[str, Any], **kwargs: Any) -> None:
        if data.get("method") == "GET" and data.get("body") is not None:
            raise ma.ValidationError("A GET request may not have a body.", field_name="body")
