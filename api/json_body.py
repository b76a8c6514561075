"""Strict JSON bodies. Python's json module accepts NaN and Infinity, unpaired surrogates and NUL
characters; none of them is portable JSON and PostgreSQL refuses the last two, so they are
malformed input (400), never a 500 at the database. For the same reason a query value with a NUL
character is an invalid field (422)."""

from __future__ import annotations

import json
from typing import Any

from flask_smorest import Blueprint
from marshmallow import ValidationError
from webargs import core
from webargs.flaskparser import FlaskParser

MAX_DEPTH = 64


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def strict_loads(raw: bytes | str) -> Any:
    value = json.loads(raw, parse_constant=_no_constants)
    _check(value, 0)
    return value


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
            return strict_loads(req.get_data(cache=True))
        except RecursionError:
            raise json.JSONDecodeError("nested too deeply", "body", 0) from None
        except ValueError as exc:
            if isinstance(exc, json.JSONDecodeError | UnicodeDecodeError):
                raise
            raise json.JSONDecodeError(str(exc), "body", 0) from None


class HopperBlueprint(Blueprint):
    ARGUMENTS_PARSER = StrictParser()
