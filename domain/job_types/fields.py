"""Fields for payload schemas that take JSON as it is written, without coercion."""

from __future__ import annotations

import math
from typing import Any

import marshmallow as ma


class JsonNumber(ma.fields.Float):
    """A JSON number: not a numeric string, not a boolean, not NaN or infinity."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.make_error("invalid")
        if not math.isfinite(value):
            raise self.make_error("special")
        result: float = super()._deserialize(value, attr, data, **kwargs)
        return result


class FullMatch(ma.validate.Regexp):
    """A pattern the whole value must match. Python's `$` also matches before a final newline,
    which the same pattern in the OpenAPI document (ECMA-262) does not."""

    def __call__(self, value: Any) -> Any:
        if self.regex.fullmatch(value) is None:
            raise ma.ValidationError(self._format_error(value))
        return value
