"""Strict JSON bodies. Python's json module accepts NaN and Infinity, unpaired surrogates, NUL
characters and duplicate keys; none of them is portable JSON (PostgreSQL refuses the middle two,
and a gateway that reads the first of two keys sees another request than we do), so they are
malformed input (400), never a 500 at the database. For the same reason a query value with a NUL
character is an invalid field (422), and so is a number that no double can hold (10^309, 1e400):
RFC 7493's interoperable range, checked once for every body whatever schema reads it next."""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Iterator
from typing import Any

from flask_smorest import Blueprint
from marshmallow import RAISE, ValidationError
from webargs import core
from webargs.flaskparser import FlaskParser

MAX_DEPTH = 64


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for key, item in pairs:
        if key in value:
            raise ValueError(f"the key {key!r} appears twice in one object")
        value[key] = item
    return value


def strict_loads(raw: bytes | str) -> Any:
    value = json.loads(raw, parse_constant=_no_constants, object_pairs_hook=_unique_keys)
    _check(value, 0)
    return value


def out_of_range(value: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """The paths of numbers that no double can hold."""
    if isinstance(value, bool):
        return
    if isinstance(value, int | float) and not _fits_a_double(value):
        yield path
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from out_of_range(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from out_of_range(item, (*path, str(index)))


def _fits_a_double(number: int | float) -> bool:
    return abs(number) <= sys.float_info.max if isinstance(number, int) else math.isfinite(number)


def _range_messages(paths: list[tuple[str, ...]]) -> dict[str, Any]:
    messages: dict[str, Any] = {}
    for path in paths:
        node = messages
        for name in path[:-1]:
            node = node.setdefault(name, {})
        node[path[-1] if path else "_schema"] = ["The number is out of range."]
    return messages


def _check(value: Any, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise ValueError("nested too deeply")
    if isinstance(value, str):
        _check_text(value)
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_text(key)
            _check(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            _check(item, depth + 1)


def _check_text(text: str) -> None:
    if "\x00" in text:
        raise ValueError("NUL characters are not accepted")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("unpaired surrogates are not accepted") from None


class StrictParser(FlaskParser):
    # A query parameter that the route does not take is an invalid field, not ignored: a typo
    # (`?stauts=failed`) would otherwise return the unfiltered list as if it were the answer.
    DEFAULT_UNKNOWN_BY_LOCATION = {
        **FlaskParser.DEFAULT_UNKNOWN_BY_LOCATION,
        "query": RAISE,
        "querystring": RAISE,
    }

    def load_querystring(self, req: Any, schema: Any) -> Any:
        # PostgreSQL refuses NUL in text: a query value with one is an invalid field.
        for name, value in req.args.items(multi=True):
            if "\x00" in value:
                raise ValidationError({name: ["NUL characters are not accepted."]})
        return super().load_querystring(req, schema)

    def _raw_load_json(self, req: Any) -> Any:
        if not core.is_json(req.mimetype):
            return core.missing
        try:
            value = strict_loads(req.get_data(cache=True))
        except RecursionError:
            raise json.JSONDecodeError("nested too deeply", "body", 0) from None
        except ValueError as exc:
            if isinstance(exc, json.JSONDecodeError | UnicodeDecodeError):
                raise
            raise json.JSONDecodeError(str(exc), "body", 0) from None
        far = list(out_of_range(value))
        if far:
            raise ValidationError(_range_messages(far))
        return value


class HopperBlueprint(Blueprint):
    ARGUMENTS_PARSER = StrictParser()
