"""The outbound guard decides before anything connects: these tests never open a connection."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import pytest

from domain.settings import Settings
from workers.outbound import (
    OutboundClient,
    OutboundGuard,
    OutboundPolicy,
    Refused,
    retry_after_seconds,
)

PUBLIC = "93.184.216.34"
LOOPBACK_NET = ipaddress.ip_network("127.0.0.0/8")


class Resolver:
    """A resolver double: fixed answers per name, in turn, and a record of the names asked."""

    def __init__(self, answers: dict[str, list[list[str]]] | None = None) -> None:
        self._answers = answers or {}
        self.asked: list[str] = []

    def __call__(self, host: str, port: int) -> list[str]:
        self.asked.append(host)
        turns = self._answers.get(host)
        if not turns:
            raise socket.gaierror(socket.EAI_NONAME, "unknown name")
        return turns.pop(0) if len(turns) > 1 else turns[0]


class Connections:
    """Stands in for the socket layer: records every attempt, fails on a non-loopback one."""

    def __init__(self) -> None:
        self.attempts: list[Any] = []

    def record(self, address: Any) -> None:
        self.attempts.append(address)
        if not is_loopback(address):
            pytest.fail(f"a connection to {address} was attempted")
        raise ConnectionRefusedError("unit tests do not connect")


def is_loopback(address: Any) -> bool:
    host = str(address[0] if isinstance(address, tuple) else address)
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


@pytest.fixture
def connections(monkeypatch: pytest.MonkeyPatch) -> Iterator[Connections]:
    recorder = Connections()
    monkeypatch.setattr(socket.socket, "connect", lambda sock, address: recorder.record(address))
    monkeypatch.setattr(socket.socket, "connect_ex", lambda sock, address: recorder.record(address))
    monkeypatch.setattr(
        socket, "create_connection", lambda address, *a, **k: recorder.record(address)
    )
    yield recorder
    # Caught by the client or not, a connection elsewhere than loopback fails the test.
    assert all(is_loopback(address) for address in recorder.attempts), recorder.attempts


def guard(
    resolver: Resolver | None = None,
    *,
    allow_private: bool = False,
    allow_http: bool = False,
    allowed_networks: tuple[Any, ...] = (),
) -> OutboundGuard:
    policy = OutboundPolicy(allow_private, allow_http, allowed_networks)
    return OutboundGuard(policy, resolve=resolver or Resolver())


def refusal(outbound: OutboundGuard, url: str) -> str:
    with pytest.raises(Refused) as caught:
        outbound.check_url(url)
    return caught.value.reason


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("https://127.0.0.1/", "127.0.0.1 is a loopback address"),
        ("https://localhost/", "127.0.0.1 is a loopback address"),
        ("https://[::1]/", "::1 is a loopback address"),
        ("https://169.254.169.254/", "169.254.169.254 is a cloud metadata address"),
        ("https://169.254.1.1/", "169.254.1.1 is a link-local address"),
        ("https://[fe80::1]/", "fe80::1 is a link-local address"),
        ("https://10.0.0.1/", "10.0.0.1 is a private address"),
        ("https://172.16.0.1/", "172.16.0.1 is a private address"),
        ("https://192.168.1.1/", "192.168.1.1 is a private address"),
        ("https://[fd00::1]/", "fd00::1 is a private address"),
        ("https://100.64.0.1/", "100.64.0.1 is a shared (carrier-grade NAT) address"),
        ("https://0.0.0.0/", "0.0.0.0 is an unspecified address"),
        ("https://[::]/", ":: is an unspecified address"),
        ("https://224.0.0.1/", "224.0.0.1 is a multicast address"),
        ("https://[ff02::1]/", "ff02::1 is a multicast address"),
        ("https://240.0.0.1/", "240.0.0.1 is a reserved address"),
        ("https://192.0.2.1/", "192.0.2.1 is a reserved address"),
        ("https://[::ffff:127.0.0.1]/", "::ffff:127.0.0.1 is a loopback address"),
        ("https://[::ffff:a00:1]/", "::ffff:a00:1 is a private address"),
        ("https://[64:ff9b::a00:1]/", "64:ff9b::a00:1 is a private address"),
        ("https://[2002:7f00:1::]/", "2002:7f00:1:: is a loopback address"),
        ("https://[fd00:ec2::254]/", "fd00:ec2::254 is a cloud metadata address"),
        ("https://100.100.100.200/", "100.100.100.200 is a cloud metadata address"),
    ],
)
def test_refuses_addresses_that_are_not_public(
    url: str, why: str, connections: Connections
) -> None:
    outbound = guard(Resolver({"localhost": [["127.0.0.1"]]}))
    assert refusal(outbound, url) == why
    assert connections.attempts == []


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://example.com/", "plain http is not allowed; use https"),
        ("file:///etc/passwd", "the scheme 'file' is not allowed; use https"),
        ("ftp://example.com/", "the scheme 'ftp' is not allowed; use https"),
        ("example.com/hook", "the scheme '(none)' is not allowed; use https"),
        ("https://user:secret@example.com/", "the URL may not carry a user name or password"),
        ("https://token@example.com/", "the URL may not carry a user name or password"),
        ("https:///hook", "the URL has no host"),
        ("https://example.com:0/", "the port must be a number from 1 to 65535"),
        ("https://example.com:70000/", "the port must be a number from 1 to 65535"),
        ("https://example.com:https/", "the port must be a number from 1 to 65535"),
        ("https://[::1/", "the URL cannot be parsed"),
    ],
)
def test_refuses_a_bad_form_before_any_resolution(
    url: str, why: str, connections: Connections
) -> None:
    resolver = Resolver({"example.com": [[PUBLIC]]})
    assert refusal(guard(resolver), url) == why
    assert resolver.asked == []
    assert connections.attempts == []


def test_resolves_names_but_not_ip_literals(connections: Connections) -> None:
    resolver = Resolver({"hooks.example.com": [[PUBLIC]]})
    outbound = guard(resolver)
    outbound.check_url(f"https://{PUBLIC}/")
    outbound.check_url("https://Hooks.Example.com/events?x=1")
    assert resolver.asked == ["hooks.example.com"]
    assert connections.attempts == []


def test_a_name_is_refused_when_any_of_its_addresses_is(connections: Connections) -> None:
    outbound = guard(Resolver({"mixed.example.com": [[PUBLIC, "10.0.0.1"]]}))
    assert refusal(outbound, "https://mixed.example.com/") == "10.0.0.1 is a private address"


def test_a_name_that_does_not_resolve_is_refused(connections: Connections) -> None:
    assert (
        refusal(guard(), "https://nowhere.example.com/") == "nowhere.example.com does not resolve"
    )


def test_allow_http_lets_plain_http_through(connections: Connections) -> None:
    guard(Resolver({"example.com": [[PUBLIC]]}), allow_http=True).check_url("http://example.com/")


@pytest.mark.parametrize("ip", ["127.0.0.1", "::1", "10.0.0.1", "169.254.1.1", "100.64.0.1"])
def test_allow_private_opens_loopback_private_link_local_and_shared(ip: str) -> None:
    guard(allow_private=True).check_address(ip)


@pytest.mark.parametrize(
    "ip",
    ["169.254.169.254", "fd00:ec2::254", "100.100.100.200", "0.0.0.0", "::", "224.0.0.1"],
)
def test_allow_private_keeps_metadata_unspecified_and_multicast_refused(ip: str) -> None:
    with pytest.raises(Refused):
        guard(allow_private=True).check_address(ip)


def test_allowed_networks_narrow_everything_else(connections: Connections) -> None:
    outbound = guard(allow_private=True, allowed_networks=(LOOPBACK_NET,))
    outbound.check_url("https://127.0.0.1/")
    outbound.check_address("127.0.0.53")
    assert refusal(outbound, "https://10.0.0.1/") == "10.0.0.1 is outside the allowed networks"
    assert refusal(outbound, f"https://{PUBLIC}/") == f"{PUBLIC} is outside the allowed networks"


def test_allowed_networks_do_not_open_private_addresses_by_themselves() -> None:
    outbound = guard(allowed_networks=(LOOPBACK_NET,))
    with pytest.raises(Refused, match="loopback"):
        outbound.check_address("127.0.0.1")


def test_check_address_refuses_what_is_not_an_address() -> None:
    with pytest.raises(Refused, match="not an IP address"):
        guard().check_address("example.com")


def test_policy_from_settings() -> None:
    settings = Settings(
        database_url="sqlite://",
        broker_url="memory://",
        redis_url=None,
        embedded=False,
        outbound_allow_private=True,
        outbound_allow_http=False,
        outbound_allowed_networks=(LOOPBACK_NET,),
    )
    assert OutboundPolicy.from_settings(settings) == OutboundPolicy(
        allow_private=True, allow_http=False, allowed_networks=(LOOPBACK_NET,)
    )


def test_delivery_refuses_a_name_that_now_resolves_to_a_private_address(
    connections: Connections,
) -> None:
    resolver = Resolver({"rebind.example.com": [[PUBLIC], ["10.0.0.1"]]})
    outbound = guard(resolver)
    outbound.check_url("https://rebind.example.com/hook")
    answer = OutboundClient(outbound).post("https://rebind.example.com/hook", b"{}", {})
    assert answer.error == "refused: 10.0.0.1 is a private address"
    assert answer.status_code is None
    assert resolver.asked == ["rebind.example.com", "rebind.example.com"]
    assert connections.attempts == []


def test_delivery_refuses_a_name_with_any_private_address(connections: Connections) -> None:
    resolver = Resolver({"mixed.example.com": [[PUBLIC, "10.0.0.1"]]})
    answer = OutboundClient(guard(resolver)).post("https://mixed.example.com/", b"{}", {})
    assert answer.error == "refused: 10.0.0.1 is a private address"
    assert answer.status_code is None
    assert connections.attempts == []


@pytest.mark.parametrize("url", ["file:///etc/passwd", "http://example.com/", "https://[::1]/"])
def test_delivery_answers_a_refusal_instead_of_raising(url: str, connections: Connections) -> None:
    answer = OutboundClient(guard(Resolver({"example.com": [[PUBLIC]]}))).post(url, b"{}", {})
    assert answer.status_code is None
    assert answer.error is not None and answer.error.startswith("refused: ")
    assert (answer.excerpt, answer.retry_after) == ("", None)
    assert connections.attempts == []


def test_delivery_to_a_name_that_does_not_resolve_is_an_error(connections: Connections) -> None:
    answer = OutboundClient(guard()).post("https://gone.example.com/", b"{}", {})
    assert answer.error == "gone.example.com does not resolve"
    assert answer.status_code is None


def test_a_refusal_does_not_log_the_headers(
    caplog: pytest.LogCaptureFixture, connections: Connections
) -> None:
    caplog.set_level("DEBUG")
    headers = {"webhook-signature": "v1,c2VjcmV0LXNpZ25hdHVyZQ=="}
    OutboundClient(guard()).post("https://10.0.0.1/", b"{}", headers)
    assert "c2VjcmV0LXNpZ25hdHVyZQ" not in caplog.text


def test_retry_after_in_seconds_or_as_a_date() -> None:
    now = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert retry_after_seconds("7") == 7.0
    assert retry_after_seconds(" 120 ") == 120.0
    assert retry_after_seconds(format_datetime(now + timedelta(seconds=30), True), now) == 30.0
    assert retry_after_seconds(format_datetime(now - timedelta(hours=1), True), now) == 0.0
    assert retry_after_seconds("soon") is None
    assert retry_after_seconds("-5") is None
    assert retry_after_seconds(None) is None
