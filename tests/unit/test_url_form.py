"""The IPv6 form of `domain.url_form` is RFC 3986's: every address, as Python writes it
compressed, exploded or with an embedded IPv4 tail, matches; text that is no address does not."""

from __future__ import annotations

import ipaddress
import re

from hypothesis import given
from hypothesis import strategies as st

from domain.url_form import _IPV6

IPV6 = re.compile(f"^{_IPV6}$")


@given(st.ip_addresses(v=6))
def test_every_ipv6_address_matches_in_each_of_its_forms(address: ipaddress.IPv6Address) -> None:
    tail = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    head = ipaddress.IPv6Address(int(address) & ~0xFFFFFFFF).exploded.rsplit(":", 2)[0]
    for form in (address.compressed, address.exploded, f"{head}:{tail}"):
        assert IPV6.match(form), form


def test_the_forms_found_refused_before_match() -> None:
    for form in ("275e::18:5:0:3e21:bfe2", "1:2::3:4:5:6", "1::2:3:4:5:6"):
        assert IPV6.match(form), form


def test_what_is_no_address_does_not_match() -> None:
    for form in ("1:2:3:4:5:6:7:8:9", "1::2::3", "12345::", ":1:2", "1.2.3.4"):
        assert not IPV6.match(form), form
