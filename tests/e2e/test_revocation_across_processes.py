"""A key revoked through one `hopper serve` is refused by another at once (README: "the key fails
with `401` at once, on every process"). Two servers on the same database, one worker process
each, so each request reaches a known process; both have served the key before the revocation,
so a cache in either would show."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from domain.model import Role
from hopper.bootstrap import Container
from tests.factories import unique
from tests.services import real_env
from tests.stack import Stack, wait_until

ONE_PROCESS = {"HOPPER_WEB_PROCESSES": "1", "HOPPER_WEB_THREADS": "4"}


def ready(stack: Stack) -> bool:
    try:
        return requests.get(stack.base_url + "/readyz", timeout=2).status_code == 200
    except requests.RequestException:
        return False


@pytest.fixture
def two_servers(migrated_database: str, tmp_path: Path) -> Iterator[tuple[Stack, Stack]]:
    stacks = (Stack(real_env(), tmp_path / "one"), Stack(real_env(), tmp_path / "two"))
    try:
        for stack in stacks:  # started together: each boots while the other does
            stack.log_dir.mkdir()
            stack.start("web", "serve", env=ONE_PROCESS)
        for stack in stacks:
            wait_until(lambda s=stack: ready(s), 60, "both servers to answer /readyz")
        yield stacks
    finally:
        for stack in stacks:  # idle keep-alive connections would hold a graceful stop
            stack.http.close()
            for process in stack.processes:
                process.popen.send_signal(signal.SIGTERM)
        for stack in stacks:
            stack.stop()


def status(stack: Stack, key: str) -> int:
    return stack.request("GET", "/v1/jobs?limit=1", key).status_code


def test_a_key_revoked_on_one_server_is_refused_by_the_other_at_once(
    two_servers: tuple[Stack, Stack], container: Container
) -> None:
    here, there = two_servers
    tenant = container.access.create_tenant(unique("revoke"))
    admin = container.access.create_key(tenant.id, "admin", Role.ADMIN).secret
    made = here.request("POST", "/v1/api-keys", admin, json={"name": "doomed", "role": "reader"})
    assert made.status_code == 201
    doomed = made.json()
    assert [status(stack, doomed["key"]) for stack in (here, there) for _ in range(3)] == [200] * 6

    revoked = here.request("DELETE", f"/v1/api-keys/{doomed['id']}", admin)
    assert revoked.status_code == 204
    at = time.monotonic()
    refused = there.request("GET", "/v1/jobs?limit=1", doomed["key"])
    took = time.monotonic() - at
    # The very first request after the revocation is refused: no retry, no waiting.
    assert refused.status_code == 401, refused.text
    assert refused.json()["type"] == "urn:hopper:problem:unauthenticated"
    assert status(here, doomed["key"]) == 401
    assert status(there, admin) == 200  # the other server is fine; only that key is refused
    print(f"\nrefused by the other server {took * 1000:.0f} ms after the revocation")
