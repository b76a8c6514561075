"""IPv6 forms that embed IPv4 addresses (mapped, compatible, translated, 6to4, Teredo, NAT64):
a packet sent to one can end up at the IPv4 address inside, so the guard judges both."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass

IPv4 = ipaddress.IPv4Address
IPv6 = ipaddress.IPv6Address
Address = IPv4 | IPv6


def _low32(address: IPv6) -> tuple[IPv4, ...]:
    return (IPv4(int(address) & 0xFFFFFFFF),)


def _sixtofour(address: IPv6) -> tuple[IPv4, ...]:
    return (address.sixtofour,) if address.sixtofour else ()


def _teredo(address: IPv6) -> tuple[IPv4, ...]:
    # The server is reached as well as the client behind its NAT, so both must be allowed.
    return address.teredo or ()


@dataclass(frozen=True)
class Form:
    """An IPv6 form that embeds IPv4 addresses, where a packet can end up (the kernel, a relay
    or a translator takes it there): each embedded address is judged as if in the URL."""

    name: str
    network: ipaddress.IPv6Network
    embedded: Callable[[IPv6], tuple[IPv4, ...]]
    # False where the form is deprecated, obsolete or local-only: refused as reserved even
    # when what it embeds is public.
    public: bool
    # True where the IPv6 address itself is on the wire (to a relay or a translator), so
    # allowed_networks must hold it too; an IPv4-mapped address is sent as IPv4.
    routed: bool


FORMS: tuple[Form, ...] = (
    Form("IPv4-mapped", ipaddress.IPv6Network("::ffff:0:0/96"), _low32, True, False),
    Form("IPv4-compatible", ipaddress.IPv6Network("::/96"), _low32, False, True),
    Form("IPv4-translated", ipaddress.IPv6Network("::ffff:0:0:0/96"), _low32, False, True),
    Form("6to4", ipaddress.IPv6Network("2002::/16"), _sixtofour, True, True),
    Form("Teredo", ipaddress.IPv6Network("2001::/32"), _teredo, True, True),
    Form("NAT64", ipaddress.IPv6Network("64:ff9b::/96"), _low32, True, True),
    # Where a local-use prefix puts the IPv4 address is the operator's choice (RFC 6052), so
    # public-looking last 32 bits prove nothing.
    Form("local-use NAT64", ipaddress.IPv6Network("64:ff9b:1::/48"), _low32, False, True),
)
# In ::/96 but the unspecified and loopback addresses in their own right, not IPv4-compatible.
_NOT_EMBEDDING = frozenset((IPv6("::"), IPv6("::1")))


def unscoped(address: Address) -> Address:
    # A zone index (fd00:ec2::254%eth0) only picks the interface; left on, the address would
    # not equal the metadata address it is.
    if isinstance(address, IPv6) and address.scope_id is not None:
        return IPv6(int(address))
    return address


def form_of(address: Address) -> Form | None:
    if not isinstance(address, IPv6) or address in _NOT_EMBEDDING:
        return None
    return next((form for form in FORMS if address in form.network), None)
