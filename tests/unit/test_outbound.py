"""The outbound guard decides before anything connects: these tests never open a connection."""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import pytest

from domain.retry_after import retry_after_seconds
from domain.settings import Settings
from workers.outbound import (
    OutboundClient,
    OutboundGuard,
    OutboundPolicy,
    Refused,
)

PUBLIC = "93.184.216.34"
PUBLIC_V4 = "8.8.8.8"
IPv4 = ipaddress.IPv4Address
IPv6 = ipaddress.IPv6Address
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
        ("https://localhost/", "the host resolves to a loopback address"),
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
        (
            "https://[::ffff:127.0.0.1]/",
            "::ffff:127.0.0.1 embeds a loopback address (IPv4-mapped)",
        ),
        ("https://[::ffff:a00:1]/", "::ffff:a00:1 embeds a private address (IPv4-mapped)"),
        ("https://[64:ff9b::a00:1]/", "64:ff9b::a00:1 embeds a private address (NAT64)"),
        ("https://[2002:7f00:1::]/", "2002:7f00:1:: embeds a loopback address (6to4)"),
        ("https://[fd00:ec2::254]/", "fd00:ec2::254 is a cloud metadata address"),
        ("https://100.100.100.200/", "100.100.100.200 is a cloud metadata address"),
        ("https://169.254.170.2/", "169.254.170.2 is a cloud metadata address"),
        ("https://169.254.170.23/", "169.254.170.23 is a cloud metadata address"),
        ("https://[fd00:ec2::23]/", "fd00:ec2::23 is a cloud metadata address"),
    ],
)
def test_refuses_addresses_that_are_not_public(
    url: str, why: str, connections: Connections
) -> None:
    outbound = guard(Resolver({"localhost": [["127.0.0.1"]]}))
    assert refusal(outbound, url) == why
    assert connections.attempts == []


def _teredo(server: str, client: str) -> str:
    # The client's address is stored with every bit inverted (RFC 4380).
    bits = 0x2001_0000 << 96 | int(IPv4(server)) << 64 | int(IPv4(client)) ^ 0xFFFF_FFFF
    return str(IPv6(bits))


# Each IPv6 form that embeds an IPv4 address: how to write it, and whether the form reaches
# a public IPv4 address at all (deprecated, obsolete and local-only forms do not).
EMBEDDING_FORMS: dict[str, tuple[Callable[[str], str], bool]] = {
    "IPv4-mapped": (lambda v4: f"::ffff:{v4}", True),
    "IPv4-compatible": (lambda v4: f"::{v4}", False),
    "IPv4-compatible, in hex": (lambda v4: str(IPv6(int(IPv4(v4)))), False),
    "IPv4-compatible, in full": (lambda v4: f"0:0:0:0:0:0:{v4}", False),
    "IPv4-translated": (lambda v4: f"::ffff:0:{v4}", False),
    "IPv4-translated, in hex": (lambda v4: str(IPv6(0xFFFF << 48 | int(IPv4(v4)))), False),
    "6to4": (lambda v4: str(IPv6(0x2002 << 112 | int(IPv4(v4)) << 80 | 1)), True),
    "Teredo client": (lambda v4: _teredo(PUBLIC_V4, v4), True),
    "Teredo server": (lambda v4: _teredo(v4, PUBLIC_V4), True),
    "NAT64": (lambda v4: f"64:ff9b::{v4}", True),
    "local-use NAT64": (lambda v4: str(IPv6(int(IPv6("64:ff9b:1::")) | int(IPv4(v4)))), False),
}
FORM_NAMES = {"Teredo client": "Teredo", "Teredo server": "Teredo"}
EMBEDDED_KINDS = {
    "127.0.0.1": "a loopback",
    "10.1.2.3": "a private",
    "192.168.1.1": "a private",
    "172.16.0.1": "a private",
    "169.254.1.1": "a link-local",
    "169.254.169.254": "a cloud metadata",
}


def _form_name(form: str) -> str:
    return FORM_NAMES.get(form, form.split(",")[0])


@pytest.mark.parametrize("v4", EMBEDDED_KINDS)
@pytest.mark.parametrize("form", EMBEDDING_FORMS)
def test_an_ipv6_address_is_refused_as_the_ipv4_address_it_embeds(
    form: str, v4: str, connections: Connections
) -> None:
    write, _ = EMBEDDING_FORMS[form]
    ip = write(v4)
    why = f"{ip} embeds {EMBEDDED_KINDS[v4]} address ({_form_name(form)})"
    assert refusal(guard(), f"https://[{ip}]:8443/") == why
    with pytest.raises(Refused, match=re.escape(why)):
        guard().check_address(ip)
    assert connections.attempts == []


@pytest.mark.parametrize("form", EMBEDDING_FORMS)
def test_an_embedded_public_address_is_allowed_only_in_a_form_that_reaches_it(
    form: str, connections: Connections
) -> None:
    write, public = EMBEDDING_FORMS[form]
    ip = write(PUBLIC_V4)
    if public:
        guard().check_url(f"https://[{ip}]/")
        guard().check_address(ip)
    else:
        assert refusal(guard(), f"https://[{ip}]/") == (
            f"{ip} is a reserved address ({_form_name(form)})"
        )
    assert connections.attempts == []


@pytest.mark.parametrize("form", EMBEDDING_FORMS)
def test_allow_private_does_not_open_metadata_in_any_ipv6_form(form: str) -> None:
    write, _ = EMBEDDING_FORMS[form]
    with pytest.raises(Refused, match="cloud metadata"):
        guard(allow_private=True).check_address(write("169.254.169.254"))


@pytest.mark.parametrize("form", ["6to4", "Teredo client", "NAT64"])
def test_allowed_networks_must_hold_a_relayed_address_as_well_as_what_it_embeds(
    form: str,
) -> None:
    # A relay or a translator carries these: the packet leaves for the IPv6 address itself.
    write, _ = EMBEDDING_FORMS[form]
    ip = write(PUBLIC_V4)
    public_v4 = ipaddress.ip_network(f"{PUBLIC_V4}/32")
    assert refusal(guard(allowed_networks=(public_v4,)), f"https://[{ip}]/") == (
        f"{ip} is an address outside the allowed networks ({_form_name(form)})"
    )
    guard(allowed_networks=(public_v4, ipaddress.ip_network("::/0"))).check_address(ip)


@pytest.mark.parametrize("ip", ["64:ff9b:0:0:1::", "::1:0:0:0", "5f00::1"])
def test_unassigned_ipv6_space_is_reserved_even_where_python_calls_it_global(ip: str) -> None:
    with pytest.raises(Refused, match=r"is a reserved address$"):
        guard(allow_private=True).check_address(ip)


@pytest.mark.parametrize("ip", ["fd00:ec2::254%eth0", "fd00:ec2::254%25eth0"])
def test_a_zone_index_does_not_hide_the_metadata_address(ip: str, connections: Connections) -> None:
    with pytest.raises(Refused, match="cloud metadata"):
        guard(allow_private=True).check_address(ip)
    assert "cloud metadata" in refusal(guard(allow_private=True), f"https://[{ip}]/")


@pytest.mark.parametrize(
    ("resolved", "why"),
    [
        ("10.0.0.5", "the host resolves to a private address"),
        ("::ffff:10.0.0.5", "the host resolves to a private address"),
        ("64:ff9b::a00:5", "the host resolves to a private address"),
        ("169.254.169.254", "the host resolves to a cloud metadata address"),
        ("127.0.0.5", "the host resolves to a loopback address"),
        ("192.0.2.5", "the host resolves to a reserved address"),
        ("::10.0.0.5", "the host resolves to a private address"),
    ],
)
def test_a_refused_name_is_told_the_rule_not_what_it_resolved_to(
    resolved: str, why: str, connections: Connections
) -> None:
    outbound = guard(Resolver({"internal.example.com": [[PUBLIC, resolved]]}))
    reason = refusal(outbound, "https://internal.example.com/hook")
    assert reason == why
    assert resolved not in reason and "10.0.0.5" not in reason and PUBLIC not in reason
    answer = OutboundClient(outbound).post("https://internal.example.com/hook", b"{}", {})
    assert answer.error == f"refused: {why}"
    assert connections.attempts == []


def test_a_name_outside_the_allowed_networks_is_not_told_its_address() -> None:
    outbound = guard(
        Resolver({"internal.example.com": [["10.0.0.5"]]}),
        allow_private=True,
        allowed_networks=(LOOPBACK_NET,),
    )
    reason = refusal(outbound, "https://internal.example.com/")
    assert reason == "the host resolves to an address outside the allowed networks"


def test_a_resolver_answer_that_is_not_an_address_is_not_echoed() -> None:
    outbound = guard(Resolver({"odd.example.com": [["internal-secret-name"]]}))
    reason = refusal(outbound, "https://odd.example.com/")
    assert reason == "the host resolves to something that is not an IP address"


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
    assert refusal(outbound, "https://mixed.example.com/") == (
        "the host resolves to a private address"
    )


def test_a_name_that_does_not_resolve_is_refused(connections: Connections) -> None:
    assert refusal(guard(), "https://nowhere.example.com/") == "the host does not resolve"


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
    assert refusal(outbound, "https://10.0.0.1/") == (
        "10.0.0.1 is an address outside the allowed networks"
    )
    assert refusal(outbound, f"https://{PUBLIC}/") == (
        f"{PUBLIC} is an address outside the allowed networks"
    )


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
    assert answer.error == "refused: the host resolves to a private address"
    assert (answer.status_code, answer.refused) == (None, True)
    assert resolver.asked == ["rebind.example.com", "rebind.example.com"]
    assert connections.attempts == []


def test_delivery_refuses_a_name_with_any_private_address(connections: Connections) -> None:
    resolver = Resolver({"mixed.example.com": [[PUBLIC, "10.0.0.1"]]})
    answer = OutboundClient(guard(resolver)).post("https://mixed.example.com/", b"{}", {})
    assert answer.error == "refused: the host resolves to a private address"
    assert (answer.status_code, answer.refused) == (None, True)
    assert connections.attempts == []


@pytest.mark.parametrize("url", ["file:///etc/passwd", "http://example.com/", "https://[::1]/"])
def test_delivery_answers_a_refusal_instead_of_raising(url: str, connections: Connections) -> None:
    answer = OutboundClient(guard(Resolver({"example.com": [[PUBLIC]]}))).post(url, b"{}", {})
    assert answer.status_code is None
    assert answer.error is not None and answer.error.startswith("refused: ")
    assert (answer.excerpt, answer.retry_after, answer.refused) == ("", None, True)
    assert connections.attempts == []


def test_delivery_to_a_name_that_does_not_resolve_is_an_error(connections: Connections) -> None:
    answer = OutboundClient(guard()).post("https://gone.example.com/", b"{}", {})
    assert answer.error == "the host does not resolve"
    # Not a refusal: the name may resolve by the next attempt.
    assert (answer.status_code, answer.refused) == (None, False)


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
    assert retry_after_seconds("\u00b2") is None  # a digit to str.isdigit, not to float()
    assert retry_after_seconds(None) is None
