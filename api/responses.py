"""Building JSON responses from the domain's serializers (one dump per response)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Response, json


def json_response(
    body: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    response = Response(json.dumps(body), status=status, mimetype="application/json")
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response
