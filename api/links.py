"""Links that answers carry (``Location``, ``Link``): relative, or under ``HOPPER_PUBLIC_URL``
when it is set. Never built from the request's ``Host``, which any client writes: behind a proxy
that passes it on, a client following such a link would send its key to whoever it named."""

from __future__ import annotations

from flask import current_app


def link(path: str) -> str:
    base = current_app.extensions["hopper"].settings.public_url
    return f"{base}{path}" if base else path
