"""The gunicorn worker that ``hopper serve`` runs: gunicorn's threaded worker with a front door
(``hopper.request_front``) that reads each request whole in the event loop before a thread serves
it, and whose own refusals (a request line over the limit, headers too large, an unknown transfer
coding, a malformed request, a request too slow) are problem+json like every other error, with a
request id, instead of gunicorn's HTML page.

The overrides are of gunicorn 27's ``ThreadWorker`` (pinned): ``enqueue_req`` is where every
connection with a request to read passes (new, kept alive, pipelined), ``handle`` runs in the
thread, ``finish_request`` and ``murder_pending`` in the event loop."""

from __future__ import annotations

import json
import uuid
from typing import Any

from gunicorn.http import errors, wsgi
from gunicorn.util import write_nonblock
from gunicorn.workers.gthread import ThreadWorker

from api.body import body_limit
from hopper.request_front import RequestFront

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
    408: "request-timeout",
    413: "body-too-large",
    403: "forbidden",
    414: "uri-too-long",
    417: "expectation-failed",
    431: "headers-too-large",
    500: "internal-error",
    501: "not-implemented",
    503: "unavailable",
}
_REASONS = {
    408: "Request Timeout",
    413: "Content Too Large",
    501: "Not Implemented",
    503: "Service Unavailable",
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


class _AnonymousResponse(wsgi.Response):  # type: ignore[misc]
    """gunicorn's answer without its ``Server`` header: no answer names the software it runs."""

    def default_headers(self) -> list[str]:
        return [h for h in super().default_headers() if not h.startswith("Server:")]


# gunicorn builds every HTTP/1 answer from this module-level name (``wsgi.create``).
wsgi.Response = _AnonymousResponse


def refusal(status: int) -> bytes:
    return problem_bytes(status, _REASONS[status])


class ProblemWorker(ThreadWorker):  # type: ignore[misc]
    front: RequestFront

    def run(self) -> None:
        settings = self.app.settings
        self.front = RequestFront(
            self.poller,
            lambda path: body_limit(settings, path),
            serve=super().enqueue_req,
            refusal=refusal,
            closed=self._connection_closed,
        )
        super().run()

    def enqueue_req(self, conn: Any) -> None:
        self.front.admit(conn)

    def handle(self, conn: Any) -> Any:
        request = getattr(conn, "hopper_request", None)
        if request is not None:  # whole, from the front: the parser reads it from memory
            conn.hopper_request = None
            conn.data_ready = True
            conn.sock.setblocking(True)
            conn.init()
            conn.parser.unreader.unread(request)
        return super().handle(conn)

    def handle_request(self, req: Any, conn: Any) -> Any:
        if getattr(conn, "hopper_close_after", False):
            req.must_close = True  # its body is not read: the answer says "Connection: close"
        return super().handle_request(req, conn)

    def _keepalive_after(self, conn: Any, keepalive: bool) -> bool:
        if getattr(conn, "hopper_close_after", False):
            return False  # close rather than wait for the unread body
        return bool(super()._keepalive_after(conn, keepalive))

    def finish_request(self, conn: Any, fs: Any) -> None:
        if fs.cancelled() or fs.exception() is not None or fs.result() is not False:
            super().finish_request(conn, fs)
            return
        # Closing: gunicorn would linger on the socket in this loop, blocking it; the front
        # lingers without blocking.
        self.nr_conns -= 1
        self.front.linger_close(conn.sock)

    def murder_pending(self) -> None:
        super().murder_pending()
        self.front.expire()

    def _connection_closed(self) -> None:
        self.nr_conns -= 1

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
