"""A gunicorn worker whose own refusals (a request line over the limit, headers too large, an
unknown transfer coding, a malformed request) are problem+json like every other error, with a
request id, instead of gunicorn's HTML page."""

from __future__ import annotations

import json
import uuid
from typing import Any

from gunicorn.http import errors
from gunicorn.util import write_nonblock
from gunicorn.workers.gthread import ThreadWorker

# gunicorn's exception → (status, reason); any other client error is a 400, the rest a 500.
_STATUS: tuple[tuple[type[Exception], int, str], ...] = (
    (errors.LimitRequestLine, 414, "URI Too Long"),
    (errors.LimitRequestHeaders, 431, "Request Header Fields Too Large"),
    (errors.UnsupportedTransferCoding, 501, "Not Implemented"),
    (errors.ExpectationFailed, 417, "Expectation Failed"),
    (errors.ForbiddenProxyRequest, 403, "Forbidden"),
    (errors.ConfigurationProblem, 500, "Internal Server Error"),
)
_CLIENT_ERRORS = tuple(
    getattr(errors, name)
    for name in (
        "InvalidRequestLine",
        "InvalidRequestMethod",
        "InvalidHTTPVersion",
        "InvalidHeader",
        "InvalidHeaderName",
        "InvalidProxyLine",
        "InvalidSchemeHeaders",
        "ObsoleteFolding",
        "InvalidChunkSize",
        "ChunkMissingTerminator",
        "InvalidChunkExtension",
        "InvalidH2CPreface",
    )
    if hasattr(errors, name)
)
_SLUGS = {
    400: "malformed-request",
    403: "forbidden",
    414: "uri-too-long",
    417: "expectation-failed",
    431: "headers-too-large",
    500: "internal-error",
    501: "not-implemented",
}


def status_for(exc: BaseException) -> tuple[int, str]:
    for kind, status, reason in _STATUS:
        if isinstance(exc, kind):
            return status, reason
    if isinstance(exc, _CLIENT_ERRORS):
        return 400, "Bad Request"
    return 500, "Internal Server Error"


def problem_bytes(status: int, reason: str) -> bytes:
    request_id = f"req_{uuid.uuid4().hex}"
    body = json.dumps(
        {
            "type": f"urn:hopper:problem:{_SLUGS.get(status, 'error')}",
            "title": reason,
            "status": status,
            "detail": "The web server refused the request before it reached the API."
            if status < 500
            else "Something went wrong on our side; the request id helps us find it.",
            "request_id": request_id,
        }
    ).encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\nConnection: close\r\n"
        f"Content-Type: application/problem+json\r\nX-Request-Id: {request_id}\r\n"
        f"X-Content-Type-Options: nosniff\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode("latin-1") + body


class ProblemWorker(ThreadWorker):  # type: ignore[misc]
    def handle_error(self, req: Any, client: Any, addr: Any, exc: BaseException) -> None:
        status, reason = status_for(exc)
        if status >= 500:
            self.log.exception("Error handling request")
        else:
            self.log.warning("Invalid request from ip=%s: %s", (addr or ("",))[0], exc)
        try:
            write_nonblock(client, problem_bytes(status, reason))
        except OSError:
            self.log.debug("Failed to send error message.")
