"""A TCP proxy on 127.0.0.1 that a test controls, to cut a service off for real.

Modes: ``forward`` passes bytes both ways; ``blackhole`` keeps every connection open and accepts
new ones but swallows all bytes (a broker or database that hangs); ``reset`` closes every
connection and drops new ones at once (a service that is gone).
"""

from __future__ import annotations

import contextlib
import select
import socket
import threading

FORWARD, BLACKHOLE, RESET = "forward", "blackhole", "reset"


class Proxy:
    def __init__(self, upstream_port: int, upstream_host: str = "127.0.0.1") -> None:
        self._upstream = (upstream_host, upstream_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self.mode = FORWARD
        self._lock = threading.Lock()
        self._pairs: list[tuple[socket.socket, socket.socket | None]] = []
        self._closed = threading.Event()
        threading.Thread(target=self._accept, daemon=True, name="proxy-accept").start()

    def set_mode(self, mode: str) -> None:
        with self._lock:
            self.mode = mode
            if mode == RESET:
                for client, upstream in self._pairs:
                    _close(client)
                    _close(upstream)
                self._pairs.clear()

    def close(self) -> None:
        self._closed.set()
        self.set_mode(RESET)
        _close(self._listener)

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                mode = self.mode
            if mode == RESET:
                _close(client)
                continue
            upstream = None
            if mode == FORWARD:
                try:
                    upstream = socket.create_connection(self._upstream, timeout=5)
                except OSError:
                    _close(client)
                    continue
            with self._lock:
                self._pairs.append((client, upstream))
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()

    def _pump(self, client: socket.socket, upstream: socket.socket | None) -> None:
        ends = [client] if upstream is None else [client, upstream]
        try:
            while not self._closed.is_set():
                readable, _, _ = select.select(ends, [], [], 0.2)
                for end in readable:
                    data = end.recv(65536)
                    if not data:
                        return
                    if self.mode == FORWARD and upstream is not None:
                        (upstream if end is client else client).sendall(data)
                    # blackhole: read and drop, so the sender's writes never block or fail
        except (OSError, ValueError):
            return
        finally:
            for end in ends:
                _close(end)
            with self._lock, contextlib.suppress(ValueError):
                self._pairs.remove((client, upstream))


def _close(sock: socket.socket | None) -> None:
    if sock is None:
        return
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()
