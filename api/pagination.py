"""Cursor pagination: the query arguments every list takes, and the ``Link`` header."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import marshmallow as ma
from flask import Response, request

from api.fields import FullMatch
from api.links import link
from domain.pagination import CURSOR_PATTERN, Page

LINK_HEADER = {
    "Link": {
        "description": 'The next page, as `<url>; rel="next"`; absent on the last page.',
        "schema": {"type": "string"},
    }
}


class PageQuery(ma.Schema):
    limit = ma.fields.Integer(load_default=20, validate=ma.validate.Range(min=1, max=100))
    cursor = ma.fields.String(
        load_default=None,
        validate=FullMatch(CURSOR_PATTERN, error="Not a cursor this list gave out."),
        metadata={"description": "The `next_cursor` of the page before."},
    )


def page_schema(item_schema: type[ma.Schema], name: str) -> type[ma.Schema]:
    return ma.Schema.from_dict(
        {
            "data": ma.fields.List(ma.fields.Nested(item_schema), required=True),
            "next_cursor": ma.fields.String(required=True, allow_none=True),
        },
        name=name,
    )


def page_body(page: Page[Any], schema: ma.Schema) -> dict[str, Any]:
    return {"data": schema.dump(page.items, many=True), "next_cursor": page.next_cursor}


def add_link(response: Response, page: Page[Any]) -> Response:
    if page.next_cursor:
        args = [(k, v) for k, v in request.args.items(multi=True) if k != "cursor"]
        args.append(("cursor", page.next_cursor))
        response.headers["Link"] = f'<{link(request.path)}?{urlencode(args)}>; rel="next"'
    return response
