"""The guarded outbound HTTP client that delivers webhooks and sends ``http`` jobs.

It posts to a URL the guard has just checked, connecting to a checked address rather than letting
the HTTP library resolve the name again, so a name that changes its answer between the check and
the connection (DNS rebinding) cannot lead a delivery to a private address. TLS still verifies
the certificate against the name.

Nothing here logs a header value: the headers carry signatures.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import urllib3
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.exceptions import (
    ConnectTimeoutError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
    SSLError,
)

from domain.retry_after import retry_after_seconds
from workers.outbound.guard import Destination, OutboundGuard, Refused, Unresolved

EXCERPT_BYTES = 1024
MAX_READ_BYTES = 64 * 1024
_CHUNK_BYTES = 16 * 1024
_POOL_CAP = 64
_CONNECTIONS_PER_POOL = 4


@dataclass(frozen=True)
class Answer:
    status_code: int | None
    duration_ms: int
    excerpt: str
    error: str | None
    retry_after: float | None
    # The guard refused the URL: asking again would be refused again, unlike a network failure.
    refused: bool = False


@dataclass(frozen=True)
class Reply:
    """What one request brought back: the status and headers (names lower-cased) and the body
    as far as it was kept, or why nothing came (``error``; ``refused`` by the guard)."""

    status: int | None
    headers: dict[str, str]
    body: bytes
    truncated: bool  # more of the body came, or would have, than was kept
    duration_ms: int
    error: str | None = None
    refused: bool = False


@dataclass(frozen=True)
class Reading:
    """How much of an answer's body to read and keep, and whether to decompress it first."""

    keep: int
    read_up_to: int
    decode: bool


# Webhooks keep an excerpt of the raw body and read a little further to reuse the connection.
EXCERPT = Reading(keep=EXCERPT_BYTES, read_up_to=MAX_READ_BYTES, decode=False)


class _Watchdog:
    """Cuts the connection when the deadline passes.

    Socket timeouts bound each wait, not their sum: a server that drips its answer a byte at a
    time would otherwise hold a worker for as long as it liked.
    """

    def __init__(self, seconds: float) -> None:
        self._lock = threading.Lock()
        self._cut: Callable[[int], None] | None = None
        self.expired = False
        self._stopped = False
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True
        self._timer.start()

    def watch(self, shutdown: Callable[[int], None]) -> None:
        with self._lock:
            if not self._stopped:
                self._cut = shutdown
                if self.expired:
                    _shut(shutdown)

    def stop(self) -> bool:
        """Disarm; True when the deadline had passed."""
        self._timer.cancel()
        with self._lock:
            self._stopped = True
            return self.expired

    def _expire(self) -> None:
        with self._lock:
            if not self._stopped:
                self.expired = True
                if self._cut is not None:
                    _shut(self._cut)


def _shut(shutdown: Callable[[int], None]) -> None:
    with contextlib.suppress(OSError):  # already closed: nothing left to cut
        shutdown(socket.SHUT_RDWR)


_current = threading.local()


class _Watched:
    """Hands the connection's socket to the running post's watchdog once the request is sent."""

    sock: Any

    def getresponse(self) -> Any:
        watchdog = getattr(_current, "watchdog", None)
        if watchdog is not None and self.sock is not None:
            watchdog.watch(self.sock.shutdown)
        return super().getresponse()  # type: ignore[misc]


class _WatchedHTTPConnection(_Watched, HTTPConnection):
    pass


class _WatchedHTTPSConnection(_Watched, HTTPSConnection):
    pass


class _HTTPPool(urllib3.HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _HTTPSPool(urllib3.HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


PoolKey = tuple[str, str, int, str]


def _new_pool(key: PoolKey) -> urllib3.HTTPConnectionPool:
    scheme, ip, port, host = key
    if scheme == "https":
        return _HTTPSPool(
            ip,
            port,
            maxsize=_CONNECTIONS_PER_POOL,
            retries=False,
            server_hostname=host,
            assert_hostname=host,
        )
    return _HTTPPool(ip, port, maxsize=_CONNECTIONS_PER_POOL, retries=False)


class _Pools:
    """Connection pools by (scheme, ip, port, host); the least recently used go beyond a cap."""

    def __init__(self, cap: int) -> None:
        self._cap = cap
        self._lock = threading.Lock()
        self._pools: OrderedDict[PoolKey, urllib3.HTTPConnectionPool] = OrderedDict()

    def get(self, key: PoolKey) -> urllib3.HTTPConnectionPool:
        with self._lock:
            pool = self._pools.pop(key, None) or _new_pool(key)
            self._pools[key] = pool
            evicted = self._pools.popitem(last=False)[1] if len(self._pools) > self._cap else None
        if evicted is not None:
            evicted.close()
        return pool

    def forget(self) -> None:
        """After a fork: the child must not share the parent's sockets (nor its lock's state)."""
        self._lock = threading.Lock()
        self._pools = OrderedDict()


_POOLS = _Pools(_POOL_CAP)
os.register_at_fork(after_in_child=_POOLS.forget)


def _hopper_version() -> str:
    try:
        return version("hopper")
    except PackageNotFoundError:  # running from a tree that is not installed
        return "0.0.0"


class OutboundClient:
    """Posts to URLs the guard allows. Never raises for network trouble: the ``Answer`` says."""

    def __init__(
        self,
        guard: OutboundGuard,
        connect_timeout: float = 3.0,
        total_timeout: float = 10.0,
        user_agent: str | None = None,
    ) -> None:
        self._guard = guard
        self._connect_timeout = connect_timeout
        self._total_timeout = total_timeout
        self._user_agent = user_agent or f"Hopper/{_hopper_version()}"

    def post(self, url: str, body: bytes, headers: dict[str, str]) -> Answer:
        """A webhook delivery's request, and an excerpt of its answer."""
        reply = self.request("POST", url, body, headers, EXCERPT)
        return Answer(
            status_code=reply.status,
            duration_ms=reply.duration_ms,
            excerpt=reply.body.decode("utf-8", errors="replace"),
            error=reply.error,
            retry_after=retry_after_seconds(reply.headers.get("retry-after")),
            refused=reply.refused,
        )

    def request(
        self,
        method: str,
        url: str,
        body: bytes | None,
        headers: dict[str, str],
        reading: Reading,
        *,
        total_timeout: float | None = None,
        guard: OutboundGuard | None = None,
    ) -> Reply:
        """One request to a URL ``guard`` (the client's own by default) allows, redirects not
        followed, within ``total_timeout`` seconds (the client's by default) all told."""
        started = time.monotonic()
        exchange = _Exchange(method, body, headers, reading, total_timeout or self._total_timeout)
        try:
            destination = (guard or self._guard).destination(url)
        except Unresolved as exc:
            return _failure(started, exc.reason)
        except Refused as exc:
            return _failure(started, f"refused: {exc.reason}", refused=True)
        return self._send(destination, exchange, started)

    def _send(self, destination: Destination, exchange: _Exchange, started: float) -> Reply:
        remaining = started + exchange.total_timeout - time.monotonic()
        if remaining <= 0:
            return _failure(started, _timed_out(exchange.total_timeout))
        watchdog = _Watchdog(remaining)
        _current.watchdog = watchdog
        try:
            return self._exchange(destination, exchange, started, watchdog)
        except Exception as exc:  # a network failure is an answer, never an exception
            return _failure(started, self._describe(exc, watchdog.stop(), exchange.total_timeout))
        finally:
            _current.watchdog = None
            watchdog.stop()

    def _exchange(
        self, destination: Destination, exchange: _Exchange, started: float, watchdog: _Watchdog
    ) -> Reply:
        ip = destination.addresses[0]
        pool = _POOLS.get((destination.scheme, ip, destination.port, destination.host))
        response = pool.urlopen(
            exchange.method,
            destination.target,
            body=exchange.body,
            headers=self._headers(destination, exchange.headers),
            retries=False,
            redirect=False,
            timeout=self._timeout(started, exchange.total_timeout),
            preload_content=False,
            release_conn=False,
            decode_content=exchange.reading.decode,
        )
        return self._reply(response, exchange, started, watchdog)

    def _reply(
        self, response: Any, exchange: _Exchange, started: float, watchdog: _Watchdog
    ) -> Reply:
        kept, ended, truncated = _read_body(
            response, exchange.reading, started + exchange.total_timeout
        )
        if watchdog.stop() or not ended:
            response.close()  # unread bytes would be taken for the next answer
        response.release_conn()
        return Reply(
            status=response.status,
            headers={name.lower(): value for name, value in response.headers.items()},
            body=kept,
            truncated=truncated,
            duration_ms=_elapsed_ms(started),
        )

    def _headers(self, destination: Destination, headers: dict[str, str]) -> dict[str, str]:
        ours = {"Host": destination.host_header, "User-Agent": self._user_agent}
        theirs = {k: v for k, v in headers.items() if k.lower() not in ("host", "user-agent")}
        return {**theirs, **ours}

    def _timeout(self, started: float, total: float) -> urllib3.Timeout:
        remaining = max(started + total - time.monotonic(), 0.001)
        return urllib3.Timeout(connect=min(self._connect_timeout, remaining), read=remaining)

    def _describe(self, exc: Exception, expired: bool, total: float) -> str:
        if expired or isinstance(exc, ReadTimeoutError):
            return _timed_out(total)
        if isinstance(exc, NewConnectionError):  # before its parent, ConnectTimeoutError
            return _connection_failure(exc)
        if isinstance(exc, ConnectTimeoutError):
            return f"timed out connecting after {self._connect_timeout:g} s"
        if isinstance(exc, SSLError):
            return f"TLS failed: {exc.__cause__ or exc}"
        if isinstance(exc, ProtocolError):
            return "the connection closed before an answer"
        return f"request failed: {type(exc).__name__}"


@dataclass(frozen=True)
class _Exchange:
    method: str
    body: bytes | None
    headers: dict[str, str]
    reading: Reading
    total_timeout: float


def _read_body(response: Any, reading: Reading, deadline: float) -> tuple[bytes, bool, bool]:
    """The first ``reading.keep`` bytes of the body (decompressed, if asked); whether the body
    was read to its end; whether more came than was kept (or the reading stopped before the
    end). Never more than ``read_up_to`` is read, so a body of any size (or a small one that
    decompresses to a large one) costs a bounded read."""
    kept = bytearray()
    seen = 0
    try:
        while seen < reading.read_up_to and time.monotonic() < deadline:
            chunk = response.read1(_CHUNK_BYTES, decode_content=reading.decode)
            if not chunk:
                return bytes(kept), True, seen > reading.keep
            seen += len(chunk)
            kept += chunk[: reading.keep - len(kept)]
    except (urllib3.exceptions.HTTPError, OSError):
        pass  # the body broke off; the status stands
    return bytes(kept), False, True


def _timed_out(total: float) -> str:
    return f"timed out after {total:g} s"


def _connection_failure(exc: NewConnectionError) -> str:
    cause = exc.__cause__
    if isinstance(cause, ConnectionRefusedError):
        return "connection refused"
    if isinstance(cause, TimeoutError):
        return "timed out connecting"
    if isinstance(cause, OSError) and cause.strerror:
        return f"could not connect: {cause.strerror.lower()}"
    return "could not connect"


def _failure(started: float, error: str, *, refused: bool = False) -> Reply:
    return Reply(
        status=None,
        headers={},
        body=b"",
        truncated=False,
        duration_ms=_elapsed_ms(started),
        error=error,
        refused=refused,
    )


def _elapsed_ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)
