"""The outbound guard: whether a URL may be called, judged on its scheme, its form and every
address its host resolves to."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

from domain.settings import Settings
from workers.outbound.embedded import IPv6, form_of, unscoped

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], list[str]]


def _networks(*cidrs: str) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(cidr) for cidr in cidrs)


# Instance metadata (AWS, GCP, Azure, OpenStack; Alibaba), AWS ECS task credentials, and the
# EKS Pod Identity agent: each hands out the credentials of the machine or the workload.
_METADATA = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",
        "fd00:ec2::254",
        "100.100.100.200",
        "169.254.170.2",
        "169.254.170.23",
        "fd00:ec2::23",
    )
)
# What allow_private opens; multicast, unspecified and metadata addresses never open.
_PRIVATE_KINDS: tuple[tuple[str, tuple[Network, ...]], ...] = (
    ("loopback", _networks("127.0.0.0/8", "::1/128")),
    ("link-local", _networks("169.254.0.0/16", "fe80::/10")),
    ("private", _networks("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7")),
    ("shared (carrier-grade NAT)", _networks("100.64.0.0/10")),
)
_RESERVED = "a reserved address"
_OUTSIDE = "an address outside the allowed networks"


@dataclass(frozen=True)
class _Verdict:
    """Why an address is refused: the kind of address the rule names, the IPv6 form it came
    in, and whether the kind is that of the embedded IPv4 address rather than the address."""

    kind: str
    form: str | None = None
    embedded: bool = False

    def of_literal(self, ip: str) -> str:
        verb = "embeds" if self.embedded else "is"
        form = f" ({self.form})" if self.form else ""
        return f"{ip} {verb} {self.kind}{form}"

    def of_resolved(self) -> str:
        return f"the host resolves to {self.kind}"


class Refused(Exception):
    """The guard will not let a request go to this URL or address."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Unresolved(Refused):
    """The host name gave no address: at delivery time a failure to retry, not a refusal."""


@dataclass(frozen=True)
class OutboundPolicy:
    allow_private: bool
    allow_http: bool
    allowed_networks: tuple[Network, ...]

    @classmethod
    def from_settings(cls, settings: Settings) -> OutboundPolicy:
        return cls(
            allow_private=settings.outbound_allow_private,
            allow_http=settings.outbound_allow_http,
            allowed_networks=tuple(settings.outbound_allowed_networks),
        )


@dataclass(frozen=True)
class Destination:
    """A checked URL: where to connect (``addresses``, all allowed) and what to ask for."""

    scheme: str
    host: str
    port: int
    host_header: str
    target: str
    addresses: tuple[str, ...]


def system_resolve(host: str, port: int) -> list[str]:
    """The addresses the system resolver gives for ``host``, in its order, without repeats."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class OutboundGuard:
    def __init__(self, policy: OutboundPolicy, resolve: Resolver | None = None) -> None:
        self.policy = policy
        self._resolve = resolve

    def check_url(self, url: str) -> None:
        """Raise ``Refused`` unless ``url`` may be called now."""
        self.destination(url)

    def destination(self, url: str) -> Destination:
        """Check ``url`` and resolve its host; every address it resolves to must be allowed."""
        parts = self._checked_form(url)
        host = _ascii_host(parts.hostname or "")
        port = _port(parts)
        addresses = self._addresses(host, port)
        if _is_ip(host):
            self.check_address(host)
        else:
            for address in addresses:
                self._check_resolved(address)
        return Destination(
            scheme=parts.scheme,
            host=host,
            port=port,
            host_header=_host_header(host, port, parts.scheme),
            target=(parts.path or "/") + (f"?{parts.query}" if parts.query else ""),
            addresses=addresses,
        )

    def check_address(self, ip: str) -> None:
        """Raise ``Refused`` unless the policy lets a request go to ``ip``.

        The reason names ``ip``: this is for an address the URL holds, which its author knows.
        ``allowed_networks``, when set, narrows everything else: the address must be inside one
        of them and also pass the other rules.
        """
        verdict = self._verdict(_parse_address(ip))
        if verdict is not None:
            raise Refused(verdict.of_literal(ip))

    def _check_resolved(self, ip: str) -> None:
        # The reason names only the rule: what an internal name resolves to is not for whoever
        # reads a 422 or an attempt log to learn.
        try:
            address = ipaddress.ip_address(ip)
        except ValueError:
            raise Refused("the host resolves to something that is not an IP address") from None
        verdict = self._verdict(address)
        if verdict is not None:
            raise Refused(verdict.of_resolved())

    def _verdict(self, address: Address) -> _Verdict | None:
        address = unscoped(address)
        form = form_of(address)
        if form is None:
            kind = self._refused_kind(address)
            return None if kind is None else _Verdict(kind)
        for inner in form.embedded(address):
            kind = self._refused_kind(inner)
            if kind is not None:
                return _Verdict(kind, form.name, embedded=True)
        if not form.public:
            return _Verdict(_RESERVED, form.name)
        if form.routed and not self._inside_allowed_networks(address):
            return _Verdict(_OUTSIDE, form.name)
        return None

    def _refused_kind(self, address: Address) -> str | None:
        """The kind of address the rule refusing ``address`` names; None when it is allowed."""
        if not self._inside_allowed_networks(address):
            return _OUTSIDE
        never = _never_allowed(address)
        if never:
            return never
        kind = _private_kind(address)
        if kind is None and _reserved(address):
            return _RESERVED
        if kind is not None and not self.policy.allow_private:
            return f"a {kind} address"
        return None

    def _inside_allowed_networks(self, address: Address) -> bool:
        nets = self.policy.allowed_networks
        return not nets or any(address in net for net in nets)

    def _checked_form(self, url: str) -> SplitResult:
        try:
            parts = urlsplit(url.strip())
        except ValueError:
            raise Refused("the URL cannot be parsed") from None
        if parts.scheme not in ("http", "https"):
            raise Refused(f"the scheme {parts.scheme or '(none)'!r} is not allowed; use https")
        if parts.scheme == "http" and not self.policy.allow_http:
            raise Refused("plain http is not allowed; use https")
        if parts.username is not None or parts.password is not None:
            raise Refused("the URL may not carry a user name or password")
        if not parts.hostname:
            raise Refused("the URL has no host")
        return parts

    def _addresses(self, host: str, port: int) -> tuple[str, ...]:
        if _is_ip(host):
            return (host,)
        # Looked up at call time so that tests can replace the module's resolver.
        resolve = self._resolve or system_resolve
        try:
            addresses = tuple(resolve(host, port))
        except (OSError, UnicodeError):
            raise Unresolved("the host does not resolve") from None
        if not addresses:
            raise Unresolved("the host resolves to no address")
        return addresses


def _ascii_host(host: str) -> str:
    try:
        return host if host.isascii() else host.encode("idna").decode("ascii")
    except UnicodeError:
        raise Refused(f"{host} is not a valid host name") from None


def _port(parts: SplitResult) -> int:
    try:
        port = parts.port
    except ValueError:
        port = 0
    if port is None:
        return 443 if parts.scheme == "https" else 80
    if not 1 <= port <= 65535:
        raise Refused("the port must be a number from 1 to 65535")
    return port


def _host_header(host: str, port: int, scheme: str) -> str:
    name = f"[{host}]" if ":" in host else host
    default = 443 if scheme == "https" else 80
    return name if port == default else f"{name}:{port}"


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _parse_address(ip: str) -> Address:
    try:
        return ipaddress.ip_address(ip)
    except ValueError:
        raise Refused(f"{ip!r} is not an IP address") from None


def _reserved(address: Address) -> bool:
    # Python's ``is_global`` lags the IANA registries (3.11 takes 64:ff9b:1::/48 and most of
    # ::/8 for global), and no unassigned IPv6 block is a legitimate webhook destination.
    if isinstance(address, IPv6) and address.is_reserved:
        return True
    return not address.is_global


def _never_allowed(address: Address) -> str | None:
    if address in _METADATA:
        return "a cloud metadata address"
    if address.is_unspecified:
        return "an unspecified address"
    if address.is_multicast:
        return "a multicast address"
    return None


def _private_kind(address: Address) -> str | None:
    for kind, nets in _PRIVATE_KINDS:
        if any(address in net for net in nets):
            return kind
    return None
