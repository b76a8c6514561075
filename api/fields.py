"""Request fields that the API shares."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import marshmallow as ma

from domain.job_types.fields import FullMatch

__all__ = ["FullMatch", "StrictBoolean", "UtcDateTime"]


class UtcDateTime(ma.fields.AwareDateTime):
    """An RFC 3339 date-time with its offset, loaded as UTC. One that UTC cannot hold (such as
    `0001-01-01T00:00:00+01:00`, which falls before year 1) is an invalid field, not a 500 where
    the database or a comparison meets it."""

    default_error_messages = {"out_of_range": "Out of range once converted to UTC."}

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> datetime:
        loaded: datetime = super()._deserialize(value, attr, data, **kwargs)
        try:
            return loaded.astimezone(UTC)
        except OverflowError:
            raise self.make_error("out_of_range") from None


class StrictBoolean(ma.fields.Boolean):
    """`true` or `false` as JSON writes them: not 1, "yes" or "true"."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> bool:
        if not isinstance(value, bool):
            raise self.make_error("invalid")
        return value
