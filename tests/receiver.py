"""A real HTTP receiver for webhook deliveries on 127.0.0.1, whose answers a test scripts."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

Answer = tuple[int, dict[str, str], bytes]
HANG_SECONDS = 30


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float
    method: str = "POST"


def ok(_request: Received) -> Answer:
    return 200, {}, b"thanks"


class Receiver:
    """Answers each request with ``respond(request)``; ``hang`` makes it never answer."""

    def __init__(self, respond: Callable[[Received], Answer] = ok, port: int = 0) -> None:
        self.respond = respond
        self.received: list[Received] = []
        self.hung: list[Received] = []
        self.holding = 0
        self.most_held_at_once = 0
        self.hang = threading.Event()
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", port), self._handler())
        self._server.daemon_threads = True
        self.port: int = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    def close(self) -> None:
        self.hang.clear()
        self._server.shutdown()
        self._server.server_close()

    def wait_for(
        self, count: int, timeout: float = 60, where: Callable[[Received], bool] | None = None
    ) -> list[Received]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                matching = [r for r in self.received if where is None or where(r)]
            if len(matching) >= count:
                return matching
            time.sleep(0.05)
        raise AssertionError(f"{len(matching)} of {count} deliveries arrived in {timeout}s")

    def _hold(self, request: Received) -> None:
        """Never answer (well past any sender's timeout), counting how many wait at once."""
        with self._lock:
            self.hung.append(request)
            self.holding += 1
            self.most_held_at_once = max(self.most_held_at_once, self.holding)
        try:
            time.sleep(HANG_SECONDS)
        finally:
            with self._lock:
                self.holding -= 1

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                request = Received(
                    self.path,
                    dict(self.headers.items()),
                    self.rfile.read(length),
                    time.time(),
                    self.command,
                )
                if receiver.hang.is_set():
                    receiver._hold(request)
                    return
                with receiver._lock:
                    receiver.received.append(request)
                status, headers, body = receiver.respond(request)
                self.send_response(status)
                for name, value in {**headers, "Content-Length": str(len(body))}.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_PUT = do_PATCH = do_DELETE = do_POST  # `http` jobs use every method

            def log_message(self, *args: object) -> None:
                return

        return Handler
