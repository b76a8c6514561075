"""IPv6 spellings of refused IPv4 addresses, created over HTTP on real PostgreSQL.

The stack here has no ``HOPPER_OUTBOUND_ALLOWED_NETWORKS`` (the test stacks' 127.0.0.0/8 would
refuse every one of these on its own), so only the guard's reading of the IPv6 forms stands
between these URLs and a 201. Endpoints are only created: no worker runs, nothing is sent.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask

from api.app import create_app
from domain.settings import Settings
from hopper.bootstrap import bootstrap
from tests.factories import TenantKeys
from tests.services import real_env

EMBEDDED_REFUSED = {
    "https://[::127.0.0.1]:8443/": "IPv4-compatible",
    "https://[::7f00:1]/": "IPv4-compatible",
    "https://[0:0:0:0:0:0:127.0.0.1]/": "IPv4-compatible",
    "https://[::a9fe:a9fe]/": "IPv4-compatible",
    "https://[::ffff:0:7f00:1]/": "IPv4-translated",
    "https://[::ffff:0:10.0.0.1]/": "IPv4-translated",
    "https://[64:ff9b:1::7f00:1]/": "local-use NAT64",
    "https://[64:ff9b:1::c0a8:101]/": "local-use NAT64",
    "https://[::ffff:7f00:1]/": "IPv4-mapped",
    "https://[2002:a00:1::]/": "6to4",
    "https://[2002:c0a8:101::1]/": "6to4",
    "https://[2001:0:808:808::80ff:fffe]/": "Teredo",  # the client is 127.0.0.1
    "https://[2001:0:a00:1::f7f7:f7f7]/": "Teredo",  # the server is 10.0.0.1
    "https://[64:ff9b::a9fe:a9fe]/": "NAT64",
    "https://[64:ff9b::ac10:1]/": "NAT64",
}


@pytest.fixture(scope="module")
def open_networks_app(migrated_database: str) -> Iterator[Flask]:
    """Production's rules with no allowed-networks list: private addresses and http refused."""
    settings = Settings.from_env(
        real_env(
            HOPPER_OUTBOUND_ALLOW_PRIVATE="false",
            HOPPER_OUTBOUND_ALLOW_HTTP="false",
            HOPPER_OUTBOUND_ALLOWED_NETWORKS="",
        )
    )
    assert settings.outbound_allowed_networks == ()
    wiring = bootstrap(settings)
    yield create_app(wiring)
    wiring.engine.dispose()


@pytest.mark.parametrize("url", EMBEDDED_REFUSED)
def test_an_ipv6_spelling_of_a_refused_address_is_422(
    open_networks_app: Flask, tenant: TenantKeys, url: str
) -> None:
    response = open_networks_app.test_client().post(
        "/v1/webhook-endpoints", json={"url": url}, headers=tenant.headers("admin")
    )
    assert response.status_code == 422, response.get_json()
    (error,) = response.get_json()["errors"]
    assert error["field"] == "url"
    assert error["message"].startswith("Refused: ")
    assert f"({EMBEDDED_REFUSED[url]})" in error["message"], error["message"]
