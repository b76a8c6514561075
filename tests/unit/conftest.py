"""Fixtures of the unit suite: services over fakes, and a guard that keeps it off the network."""

from __future__ import annotations

import socket
from typing import Any

import pytest

from domain.auth import Principal
from domain.model import Role
from tests.unit.builders import principal
from tests.unit.fakes import FakeWiring


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """The unit suite does no I/O: any attempt to open a connection fails the test."""

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a unit test tried to use the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.fixture
def wiring() -> FakeWiring:
    return FakeWiring()


@pytest.fixture
def alice() -> Principal:
    return principal(Role.SUBMITTER)


@pytest.fixture
def bob() -> Principal:
    """A submitter of another tenant."""
    return principal(Role.SUBMITTER)
