"""The web server's front door on a real `hopper serve` with its default 32 threads: a body
announced over the limit is refused at once, and slow clients hold no thread."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator

import pytest
import requests

from domain.settings import Settings
from hopper.request_front import GRACE_SECONDS
from tests.services import real_env
from tests.stack import Stack

DEFAULTS = Settings.from_env(real_env())
THREADS = DEFAULTS.web_processes * DEFAULTS.web_threads
ECHO = json.dumps({"type": "echo", "payload": {"message": "x"}}).encode()


@pytest.fixture(scope="module")
def stack(migrated_database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    running = Stack(real_env(), tmp_path_factory.mktemp("front"))
    try:
        running.web()
        running.worker()
        yield running
    finally:
        running.stop()


def connect(stack: Stack) -> socket.socket:
    return socket.create_connection(("127.0.0.1", stack.port), timeout=30)


def read_all(sock: socket.socket) -> bytes:
    answer = b""
    while chunk := sock.recv(65536):
        answer += chunk
    return answer


def test_a_body_announced_over_the_limit_is_refused_at_once_and_the_connection_closed(
    stack: Stack,
) -> None:
    key = stack.new_tenant()["submitter"]
    with connect(stack) as sock:
        started = time.monotonic()
        sock.sendall(
            b"POST /v1/jobs HTTP/1.1\r\nHost: h\r\nContent-Type: application/json\r\n"
            + f"Authorization: Bearer {key}\r\nContent-Length: {2 * 1024 * 1024}\r\n\r\n".encode()
            + b'{"type": "echo", "payload": {"message": "xxx"'  # 40-odd of its 2 MiB
        )
        answer = read_all(sock)  # returns only once the server closed the connection
        elapsed = time.monotonic() - started
    assert answer.startswith(b"HTTP/1.1 413 "), answer[:200]
    assert b"\r\nconnection: close\r\n" in answer.lower()
    assert b"application/problem+json" in answer
    assert elapsed < 1.0, f"answered and closed after {elapsed:.2f} s"


class SlowClient(threading.Thread):
    """Sends a request a byte or a line every few seconds and never finishes it."""

    def __init__(self, stack: Stack, key: str, trickle_body: bool) -> None:
        super().__init__(daemon=True)
        self._stack, self._key, self._body = stack, key, trickle_body
        self.started = threading.Event()
        self.answer: bytes | None = None  # what came back when the server gave up on it
        self.answered_at: float | None = None

    def run(self) -> None:
        with connect(self._stack) as sock:
            head = f"POST /v1/jobs HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer {self._key}\r\n"
            if self._body:
                head += "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
            sock.sendall(head.encode())
            self.started.set()
            sock.settimeout(3)
            try:
                for n in range(100):
                    sock.sendall(b"{" if self._body else f"X-Slow-{n}: a\r\n".encode())
                    try:
                        self.answer = read_all(sock)
                        break
                    except TimeoutError:
                        continue
            except OSError as exc:  # reset while sending: the server closed it
                self.answer = repr(exc).encode()
            self.answered_at = time.monotonic()


def test_slow_clients_hold_no_thread_and_are_cut_off(stack: Stack) -> None:
    keys = stack.new_tenant()
    slow = [
        SlowClient(stack, keys["submitter"], trickle_body=n % 2 == 1) for n in range(2 * THREADS)
    ]
    for client in slow:
        client.start()
    assert all(client.started.wait(10) for client in slow)
    time.sleep(1.0)  # every one has its connection open and has trickled
    session = requests.Session()
    latencies, statuses = [], []
    for _ in range(100):
        started = time.monotonic()
        response = session.post(
            f"{stack.base_url}/v1/jobs",
            data=ECHO,
            headers={
                "Authorization": f"Bearer {keys['submitter']}",
                "Content-Type": "application/json",
            },
            timeout=10,
        )
        latencies.append(time.monotonic() - started)
        statuses.append(response.status_code)
    # The attack was in place the whole time: no slow client had been answered yet.
    assert [c for c in slow if c.answered_at is not None] == []
    assert statuses == [202] * 100
    assert max(latencies) < 2.0, f"slowest submit {max(latencies):.2f} s"
    for client in slow:
        client.join(GRACE_SECONDS + 15)
    cut = [c.answer for c in slow]
    assert all(answer is not None for answer in cut), "a slow client was never cut off"
    assert all(a == b"" or a.startswith((b"HTTP/1.1 408 ", b"ConnectionResetError")) for a in cut)
    assert sum(a.startswith(b"HTTP/1.1 408 ") for a in cut) >= THREADS  # most are told why
