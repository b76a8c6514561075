"""Rate limits on real Redis: one call a request, whatever limits apply, and the same counts as
the in-process counter that stands in while Redis is away."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from flask import Flask

from api import rate_limits
from api.app import create_app
from api.rate_counter import Limit, MemoryCounter, RedisCounter
from domain.settings import Settings
from hopper.bootstrap import bootstrap
from tests.factories import TenantKeys
from tests.services import REDIS_URL, real_env

ECHO = {"type": "echo", "payload": {"message": "x"}}


@pytest.fixture
def app(migrated_database: str) -> Flask:
    return create_app(bootstrap(Settings.from_env(real_env())))


@pytest.fixture
def calls(app: Flask, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every command the app's limiter sends to Redis."""
    store = app.extensions[rate_limits.EXTENSION].redis
    client = store._script.registered_client
    sent: list[str] = []
    real = client.execute_command

    def counted(*args: Any, **kwargs: Any) -> Any:
        sent.append(str(args[0]))
        return real(*args, **kwargs)

    monkeypatch.setattr(client, "execute_command", counted)
    yield sent


def test_a_request_costs_one_call_to_redis_whatever_its_limits(
    app: Flask, calls: list[str], tenant: TenantKeys
) -> None:
    client = app.test_client()
    assert client.get("/v1/jobs", headers=tenant.headers()).status_code == 200  # loads the script
    calls.clear()
    assert client.get("/v1/jobs", headers=tenant.headers()).status_code == 200
    assert client.post("/v1/jobs", json=ECHO, headers=tenant.headers()).status_code == 202
    assert calls == ["EVALSHA", "EVALSHA"]  # the submission checks two limits in that one call


def test_redis_counts_as_the_in_process_counter_does() -> None:
    store = RedisCounter(redis.Redis.from_url(REDIS_URL))
    memory = MemoryCounter()
    limits = [Limit(7, 60), Limit(3, 60)]
    for counter in (store, memory):
        bucket = uuid.uuid4().hex
        every = [(f"{bucket}:all", limits[0])]
        both = [*every, (f"{bucket}:create", limits[1])]
        seen = [counter.check(both).allowed for _ in range(5)]
        seen += [counter.check(every).allowed for _ in range(4)]
        assert seen == [True] * 3 + [False] * 2 + [True, True, False, False], counter
