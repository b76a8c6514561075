"""The outbound client against real HTTP servers on 127.0.0.1. Names other than IP literals go
through a resolver double, so nothing here asks a real resolver or leaves the machine."""

from __future__ import annotations

import datetime
import ipaddress
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from workers.outbound import Answer, OutboundClient, OutboundGuard, OutboundPolicy

LARGE_BODY = b"0123456789" * 200_000
SIGNATURE = "v1,c2VjcmV0LXNpZ25hdHVyZQ=="


@dataclass
class Seen:
    path: str
    headers: dict[str, str]
    body: bytes
    client_port: int


class Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.seen: list[Seen] = []

    @property
    def port(self) -> int:
        return self.server_address[1]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, so that connection reuse shows
    server: Server

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        seen = Seen(self.path, dict(self.headers.items()), body, self.client_address[1])
        self.server.seen.append(seen)
        ROUTES[self.path](self)

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def answer(self, status: int, body: bytes = b"", **headers: str) -> None:
        self.send_response(status)
        for name, value in {**headers, "Content-Length": str(len(body))}.items():
            self.send_header(name.replace("_", "-"), value)
        self.end_headers()
        self.wfile.write(body)

    def drip(self, data: bytes, every: float = 0.1, limit: float = 5.0) -> None:
        """Send one byte at a time, so that no single wait for data is ever long."""
        stop = time.monotonic() + limit
        for byte in data:
            if time.monotonic() > stop:
                return
            try:
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
            except OSError:  # the client hung up
                return
            time.sleep(every)


ROUTES: dict[str, Callable[[Handler], None]] = {
    "/ok": lambda h: h.answer(200, LARGE_BODY[:5000]),
    "/large": lambda h: h.answer(200, LARGE_BODY),
    "/redirect": lambda h: h.answer(302, Location="http://10.0.0.1/"),
    "/busy": lambda h: h.answer(429, b"slow down", Retry_After="7"),
    "/drip-headers": lambda h: h.drip(b"HTTP/1.1 200 OK\r\nX-Slow: " + b"z" * 200),
    "/drip-body": lambda h: h.drip(
        b"HTTP/1.1 200 OK\r\nContent-Length: 200\r\n\r\n" + b"y" * 200, 0.02
    ),
}


class Resolver:
    def __init__(self, answers: dict[str, list[str]]) -> None:
        self._answers = answers
        self.asked: list[str] = []

    def __call__(self, host: str, port: int) -> list[str]:
        self.asked.append(host)
        return self._answers[host]


@pytest.fixture(autouse=True)
def only_loopback(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Any]]:
    """Every connection goes through; one to anywhere but 127.0.0.1 fails the test first."""
    attempts: list[Any] = []

    def guarded(original: Callable[..., Any]) -> Callable[..., Any]:
        def connect(sock: Any, address: Any, *args: Any) -> Any:
            attempts.append(address)
            if address[0] != "127.0.0.1":
                pytest.fail(f"a connection to {address} was attempted")
            return original(sock, address, *args)

        return connect

    monkeypatch.setattr(socket.socket, "connect", guarded(socket.socket.connect))
    monkeypatch.setattr(socket.socket, "connect_ex", guarded(socket.socket.connect_ex))
    yield attempts
    assert all(address[0] == "127.0.0.1" for address in attempts), attempts


@pytest.fixture
def server() -> Iterator[Server]:
    running = Server()
    threading.Thread(target=running.serve_forever, args=(0.05,), daemon=True).start()
    yield running
    running.shutdown()
    running.server_close()


def client(total_timeout: float = 5.0, resolver: Resolver | None = None) -> OutboundClient:
    policy = OutboundPolicy(
        allow_private=True,
        allow_http=True,
        allowed_networks=(ipaddress.ip_network("127.0.0.0/8"),),
    )
    resolve = resolver or Resolver({"hooks.test": ["127.0.0.1"]})
    return OutboundClient(OutboundGuard(policy, resolve=resolve), total_timeout=total_timeout)


def post(outbound: OutboundClient, url: str) -> Answer:
    return outbound.post(url, b'{"type":"webhook.test"}', {"webhook-signature": SIGNATURE})


def test_a_200_answer(server: Server, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("DEBUG")
    headers = {"content-type": "application/json", "webhook-id": "msg_1", "User-Agent": "x"}
    url = f"http://hooks.test:{server.port}/ok"
    answer = client().post(url, b'{"a":1}', {**headers, "webhook-signature": SIGNATURE})
    assert (answer.status_code, answer.error, answer.retry_after) == (200, None, None)
    assert answer.excerpt == LARGE_BODY[:1024].decode()
    (seen,) = server.seen
    assert seen.body == b'{"a":1}'
    assert seen.headers["Host"] == f"hooks.test:{server.port}"
    assert seen.headers["User-Agent"].startswith("Hopper/")
    assert seen.headers["webhook-id"] == "msg_1"
    assert seen.headers["content-type"] == "application/json"
    assert seen.headers["webhook-signature"] == SIGNATURE
    assert SIGNATURE not in caplog.text


def test_a_redirect_is_an_answer_and_is_not_followed(
    server: Server, only_loopback: list[Any]
) -> None:
    answer = post(client(), f"http://127.0.0.1:{server.port}/redirect")
    assert (answer.status_code, answer.error) == (302, None)
    assert [seen.path for seen in server.seen] == ["/redirect"]
    assert {address[0] for address in only_loopback} == {"127.0.0.1"}


def test_retry_after_on_429(server: Server) -> None:
    answer = post(client(), f"http://127.0.0.1:{server.port}/busy")
    assert (answer.status_code, answer.retry_after, answer.excerpt) == (429, 7.0, "slow down")


def test_a_server_that_never_answers_times_out() -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)  # the kernel accepts; nobody ever reads or answers
        started = time.monotonic()
        answer = post(client(total_timeout=1), f"http://127.0.0.1:{silent.getsockname()[1]}/")
    assert (answer.status_code, answer.error) == (None, "timed out after 1 s")
    assert 0.8 < time.monotonic() - started < 2.5


def test_a_server_that_drips_its_headers_is_cut_at_the_deadline(server: Server) -> None:
    started = time.monotonic()
    answer = post(client(total_timeout=1), f"http://127.0.0.1:{server.port}/drip-headers")
    assert (answer.status_code, answer.error) == (None, "timed out after 1 s")
    assert time.monotonic() - started < 2.0


def test_a_server_that_drips_its_body_keeps_its_status(server: Server) -> None:
    started = time.monotonic()
    answer = post(client(total_timeout=1), f"http://127.0.0.1:{server.port}/drip-body")
    assert (answer.status_code, answer.error) == (200, None)
    assert 0 < len(answer.excerpt) < 200
    assert time.monotonic() - started < 2.0


def test_a_closed_port_is_connection_refused() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    answer = post(client(), f"http://127.0.0.1:{port}/")
    assert (answer.status_code, answer.error) == (None, "connection refused")


def test_repeated_deliveries_reuse_the_connection(server: Server) -> None:
    outbound = client()
    first = post(outbound, f"http://hooks.test:{server.port}/ok")
    second = post(outbound, f"http://hooks.test:{server.port}/ok")
    assert first.status_code == second.status_code == 200
    assert len({seen.client_port for seen in server.seen}) == 1


def test_a_large_body_is_read_no_further_than_needed(server: Server) -> None:
    outbound = client()
    answer = post(outbound, f"http://hooks.test:{server.port}/large")
    assert (answer.status_code, len(answer.excerpt)) == (200, 1024)
    # The rest of the body was left unread, so that connection cannot serve the next request.
    assert post(outbound, f"http://hooks.test:{server.port}/ok").status_code == 200
    assert len({seen.client_port for seen in server.seen}) == 2


def test_a_name_that_resolves_outside_the_allowed_networks_is_not_contacted(
    server: Server,
) -> None:
    resolver = Resolver({"hooks.test": ["127.0.0.1", "::1"]})
    answer = post(client(resolver=resolver), f"http://hooks.test:{server.port}/ok")
    assert answer.error == "refused: the host resolves to an address outside the allowed networks"
    assert server.seen == []


@dataclass
class Tls:
    ca_file: Path
    context: ssl.SSLContext
    names_asked: list[str | None]


@pytest.fixture
def tls(tmp_path: Path) -> Tls:
    """A test authority and a certificate for hooks.test, on a server context that records SNI."""
    ca_key, leaf_key = (
        ec.generate_private_key(ec.SECP256R1()),
        ec.generate_private_key(ec.SECP256R1()),
    )
    ca = _certificate("Hopper Test CA", ca_key, ca_key, None, is_ca=True)
    leaf = _certificate("hooks.test", leaf_key, ca_key, ca, is_ca=False)
    (tmp_path / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "leaf.pem").write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    key_pem = leaf_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    (tmp_path / "leaf.key").write_bytes(key_pem)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "leaf.pem", tmp_path / "leaf.key")
    names: list[str | None] = []
    context.sni_callback = lambda sock, name, ctx: names.append(name)
    return Tls(tmp_path / "ca.pem", context, names)


def _certificate(
    name: str, key: Any, signer: Any, issuer: x509.Certificate | None, *, is_ca: bool
) -> x509.Certificate:
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.subject if issuer else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=is_ca, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(signer.public_key()), False
        )
    )
    if not is_ca:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), False)
    return builder.sign(signer, hashes.SHA256())


@pytest.fixture
def tls_server(tls: Tls, server: Server, monkeypatch: pytest.MonkeyPatch) -> Server:
    server.socket = tls.context.wrap_socket(server.socket, server_side=True)
    # The client trusts the system's authorities; point "the system" at the test authority.
    monkeypatch.setenv("SSL_CERT_FILE", str(tls.ca_file))
    return server


def test_https_connects_to_the_checked_address_and_verifies_the_name(
    tls_server: Server, tls: Tls
) -> None:
    answer = post(client(), f"https://hooks.test:{tls_server.port}/busy")
    assert (answer.status_code, answer.error) == (429, None)
    assert tls.names_asked == ["hooks.test"]
    assert tls_server.seen[0].headers["Host"] == f"hooks.test:{tls_server.port}"


def test_https_refuses_a_certificate_for_another_name(tls_server: Server) -> None:
    resolver = Resolver({"other.test": ["127.0.0.1"]})
    answer = post(client(resolver=resolver), f"https://other.test:{tls_server.port}/ok")
    assert answer.status_code is None
    assert answer.error is not None and answer.error.startswith("TLS failed")
    assert tls_server.seen == []
