"""A key revoked through one `hopper serve` is refused by another within a second (README: "the
key fails with `401` within a second, on every process"), with each process caching the keys it
has authenticated: once while the invalidation channel works, and once with it cut.

Two servers on the same database, one worker process each, so each request reaches a known
process. The second server reaches PostgreSQL through proxies the test controls: one for its
pool, one for the connection on which it listens for key changes (HOPPER_LISTEN_DATABASE_URL).
Cutting the first shows that the key really is served from the cache; cutting the second is the
channel cut: it swallows every byte, so nothing on the server sees an error."""

from __future__ import annotations

import signal
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import requests
from sqlalchemy.engine import make_url

from domain.model import Role
from hopper.bootstrap import Container
from tests import services
from tests.factories import unique
from tests.faults.proxy import BLACKHOLE, FORWARD, RESET, Proxy
from tests.services import real_env
from tests.stack import Stack, wait_until

ONE_PROCESS = {"HOPPER_WEB_PROCESSES": "1", "HOPPER_WEB_THREADS": "4"}
BOUND_SECONDS = 1.0


@dataclass
class Servers:
    here: Stack
    there: Stack
    pool: Proxy  # the second server's pool connections
    channel: Proxy  # the second server's listening connection


def ready(stack: Stack) -> bool:
    try:
        return requests.get(stack.base_url + "/readyz", timeout=2).status_code == 200
    except requests.RequestException:
        return False


def through(proxy: Proxy) -> str:
    url = make_url(services.DATABASE_URL).set(host="127.0.0.1", port=proxy.port)
    return url.render_as_string(hide_password=False)


@pytest.fixture(scope="module")
def servers(migrated_database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    folder = tmp_path_factory.mktemp("revocation")
    pool, channel = Proxy(5432), Proxy(5432)
    proxied = {"DATABASE_URL": through(pool), "HOPPER_LISTEN_DATABASE_URL": through(channel)}
    here, there = Stack(real_env(), folder / "here"), Stack(real_env(), folder / "there")
    try:
        for stack, env in ((here, {}), (there, proxied)):  # each boots while the other does
            stack.log_dir.mkdir()
            stack.start("web", "serve", env={**ONE_PROCESS, **env})
        for stack in (here, there):
            wait_until(lambda s=stack: ready(s), 60, "both servers to answer /readyz")
        yield Servers(here, there, pool, channel)
    finally:
        for stack in (here, there):  # idle keep-alive connections would hold a graceful stop
            stack.http.close()
            for process in stack.processes:
                process.popen.send_signal(signal.SIGTERM)
        for stack in (here, there):
            stack.stop()
        pool.close()
        channel.close()


@pytest.fixture
def admin(container: Container) -> str:
    tenant = container.access.create_tenant(unique("revoke"))
    return container.access.create_key(tenant.id, "admin", Role.ADMIN).secret


def status(stack: Stack, key: str, path: str = "/v1/jobs?limit=1") -> int:
    return stack.request("GET", path, key).status_code


def new_key(servers: Servers, admin: str) -> dict[str, str]:
    body = {"name": f"doomed-{uuid.uuid4().hex[:6]}", "role": "reader"}
    made = servers.here.request("POST", "/v1/api-keys", admin, json=body)
    assert made.status_code == 201, made.text
    key: dict[str, str] = made.json()
    # Both servers have served it, more than a second ago: each holds it in its cache.
    assert [status(s, key["key"]) for s in (servers.here, servers.there) for _ in range(3)] == [
        200
    ] * 6
    time.sleep(BOUND_SECONDS + 0.5)
    return key


def served_from_the_cache(servers: Servers, key: str) -> bool:
    """With the second server's pool cut off from PostgreSQL, a route that reads nothing but
    the key still answers: the key was not read."""
    servers.pool.set_mode(RESET)
    try:
        return status(servers.there, key, "/v1/job-types") == 200
    finally:
        servers.pool.set_mode(FORWARD)


def revoke_and_time_the_refusal(servers: Servers, admin: str, key: dict[str, str]) -> float:
    revoked = servers.here.request("DELETE", f"/v1/api-keys/{key['id']}", admin)
    assert revoked.status_code == 204
    at = time.monotonic()
    while True:
        answer = servers.there.request("GET", "/v1/jobs?limit=1", key["key"])
        took = time.monotonic() - at
        if answer.status_code == 401:
            assert answer.json()["type"] == "urn:hopper:problem:unauthenticated"
            return took
        assert answer.status_code == 200, answer.text
        assert took < BOUND_SECONDS, f"still served {took:.2f} s after the revocation"
        time.sleep(0.01)


def heard_of(servers: Servers, key: dict[str, str]) -> bool:
    return f'"key_id": "{key["id"]}"' in servers.there.processes[0].output()


def test_a_key_revoked_on_one_server_is_refused_by_the_other_within_a_second(
    servers: Servers, admin: str
) -> None:
    doomed = new_key(servers, admin)
    assert served_from_the_cache(servers, doomed["key"])

    took = revoke_and_time_the_refusal(servers, admin, doomed)
    assert status(servers.here, doomed["key"]) == 401
    assert status(servers.there, admin) == 200  # only that key is refused
    wait_until(lambda: heard_of(servers, doomed), 5, "the server's log of the announcement")
    print(f"\nrefused by the other server {took * 1000:.0f} ms after the revocation")


def test_with_the_invalidation_channel_cut_the_key_is_still_refused_within_a_second(
    servers: Servers, admin: str
) -> None:
    doomed = new_key(servers, admin)
    assert served_from_the_cache(servers, doomed["key"])

    servers.channel.set_mode(BLACKHOLE)  # the listening connection stays open and hears nothing
    took = revoke_and_time_the_refusal(servers, admin, doomed)
    assert status(servers.there, admin) == 200  # read again from the database, and served
    time.sleep(0.5)
    assert not heard_of(servers, doomed), "the announcement got through: the channel was not cut"
    print(f"\nchannel cut: refused {took * 1000:.0f} ms after the revocation")
