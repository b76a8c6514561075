"""The web server's front door: the event loop of each gunicorn worker reads every request whole,
without a thread, before a thread serves it.

gunicorn's threaded worker hands a connection to a thread as soon as it is readable, and the
thread then waits on the client for the rest of the head and the body. Thirty-two clients that
send a byte every few seconds would hold every thread. Here the loop holds them instead, and:

- a request must arrive at ``RATE_FLOOR`` bytes a second on average after ``GRACE_SECONDS``, and
  never fall silent for ``SILENCE_SECONDS``; one that does is answered ``408`` and closed;
- a ``Content-Length`` over the route's limit is handed on at once, unread: the application
  answers (``401``, ``403``, ``404``, ``405`` or ``413``, in the contract's order) and the
  connection is closed, never drained;
- a chunked body that grows past the route's limit is answered ``413`` here, and a transfer
  coding other than ``chunked`` alone ``501``;
- a closed connection lingers, without a thread, for the client to read the answer.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from hopper.request_framing import RequestBuffer, Verdict

RATE_FLOOR = 1024
GRACE_SECONDS = 10.0
SILENCE_SECONDS = 10.0
LINGER_SECONDS = 2.0
LINGER_BYTES = 1024 * 1024
BUFFER_BUDGET = 256 * 1024 * 1024  # bytes held for requests in the making, per process
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
_REFUSALS = {Verdict.TOO_LARGE: 413, Verdict.UNSUPPORTED: 501}


@dataclass
class _Reading:
    conn: Any
    buffer: RequestBuffer
    started: float
    last_byte: float
    continued: bool = False

    def too_slow(self, now: float) -> bool:
        if now - self.last_byte > SILENCE_SECONDS:
            return True
        return now - self.started > GRACE_SECONDS + self.buffer.received / RATE_FLOOR


@dataclass
class _Lingering:
    sock: socket.socket
    until: float
    drained: int = 0


class RequestFront:
    """Connections whose request is still arriving, and connections lingering before close."""

    def __init__(
        self,
        poller: selectors.BaseSelector,
        body_limit: Callable[[str], int],
        serve: Callable[[Any], None],
        refusal: Callable[[int], bytes],
        closed: Callable[[], None],
    ) -> None:
        self._poller = poller
        self._body_limit = body_limit
        self._serve = serve
        self._refusal = refusal
        self._closed = closed
        self._reading: dict[int, _Reading] = {}
        self._lingering: dict[int, _Lingering] = {}
        self._buffered = 0

    def admit(self, conn: Any) -> None:
        """A connection with a request to read (new, kept alive, or with one pipelined)."""
        seed = conn.parser.unreader.take_buffered() if conn.parser is not None else b""
        now = time.monotonic()
        reading = _Reading(conn, RequestBuffer(self._body_limit, seed), now, now)
        conn.sock.setblocking(False)
        self._reading[conn.sock.fileno()] = reading
        self._buffered += len(seed)
        self._poller.register(conn.sock, selectors.EVENT_READ, partial(self._readable, reading))
        if seed:
            self._advance(reading, reading.buffer.feed())

    def expire(self) -> None:
        """Cut requests that arrive too slowly; close lingering connections whose time is up."""
        now = time.monotonic()
        for reading in list(self._reading.values()):
            if reading.too_slow(now):
                if reading.buffer.received:
                    self._refuse(reading, 408)
                else:  # it never said anything: no answer is owed
                    self._leave(reading)
                    self._close(reading.conn.sock)
        for fd, lingering in list(self._lingering.items()):
            if now > lingering.until:
                self._end_linger(fd)

    def linger_close(self, sock: socket.socket) -> None:
        """Close after the answer: stop sending, then read and drop what the client still sends
        for a moment, so that its unread bytes do not reset the connection under the answer."""
        with contextlib.suppress(OSError):
            sock.setblocking(False)
            sock.shutdown(socket.SHUT_WR)
        try:
            fd = sock.fileno()
            self._poller.register(sock, selectors.EVENT_READ, self._drain)
        except (OSError, ValueError, KeyError):
            with contextlib.suppress(OSError):
                sock.close()
            return
        self._lingering[fd] = _Lingering(sock, time.monotonic() + LINGER_SECONDS)

    def _readable(self, reading: _Reading, sock: socket.socket) -> None:
        data = _receive(sock)
        if data is None:
            return
        if not data:  # the client went away
            self._leave(reading)
            self._close(sock)
            return
        reading.last_byte = time.monotonic()
        self._buffered += len(data)
        if self._buffered > BUFFER_BUDGET:
            self._refuse(reading, 503)
            return
        self._advance(reading, reading.buffer.feed(data))

    def _advance(self, reading: _Reading, verdict: Verdict) -> None:
        if verdict is Verdict.MORE:
            if reading.buffer.continue_expected and not reading.continued:
                reading.continued = True
                with contextlib.suppress(OSError):
                    reading.conn.sock.send(CONTINUE)
            return
        if verdict in _REFUSALS:
            self._refuse(reading, _REFUSALS[verdict])
            return
        self._leave(reading)
        conn = reading.conn
        conn.hopper_request = reading.buffer.data
        # Handed on unread: close after the answer instead of waiting for the body.
        conn.hopper_close_after = verdict is Verdict.HAND_ON
        self._serve(conn)

    def _refuse(self, reading: _Reading, status: int) -> None:
        self._leave(reading)
        with contextlib.suppress(OSError):
            reading.conn.sock.send(self._refusal(status))
        self._closed()
        self.linger_close(reading.conn.sock)

    def _leave(self, reading: _Reading) -> None:
        sock = reading.conn.sock
        self._reading.pop(sock.fileno(), None)
        self._buffered -= reading.buffer.received
        with contextlib.suppress(OSError, ValueError, KeyError):
            self._poller.unregister(sock)

    def _close(self, sock: socket.socket) -> None:
        self._closed()
        with contextlib.suppress(OSError):
            sock.close()

    def _drain(self, sock: socket.socket) -> None:
        fd = sock.fileno()
        lingering = self._lingering.get(fd)
        data = _receive(sock)
        if data is None:
            return
        if lingering is None or not data:
            self._end_linger(fd)
            return
        lingering.drained += len(data)
        if lingering.drained > LINGER_BYTES:
            self._end_linger(fd)

    def _end_linger(self, fd: int) -> None:
        lingering = self._lingering.pop(fd, None)
        if lingering is None:
            return
        with contextlib.suppress(OSError, ValueError, KeyError):
            self._poller.unregister(lingering.sock)
        with contextlib.suppress(OSError):
            lingering.sock.close()


def _receive(sock: socket.socket) -> bytes | None:
    """What the socket has: None if nothing yet, empty if the client is gone."""
    try:
        return sock.recv(65536)
    except (BlockingIOError, InterruptedError):
        return None
    except OSError:
        return b""
