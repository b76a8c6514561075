"""The pool pings a connection only when it sat idle (a ping on every checkout cost each
transaction a round trip), and a connection that died while idle is replaced before use."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, create_engine, text

from domain import db
from domain.settings import Settings


@pytest.fixture
def engine(real_settings: Settings, migrated_database: str) -> Iterator[Engine]:
    made = db.make_engine(real_settings, pool_size=1)
    yield made
    made.dispose()


def pings(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    sent: list[int] = []
    real = engine.dialect.do_ping

    def counted(dbapi_connection: object) -> bool:
        sent.append(1)
        return real(dbapi_connection)

    monkeypatch.setattr(engine.dialect, "do_ping", counted)
    return sent


def backend_pid(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(text("SELECT pg_backend_pid()")).scalar_one())


def age_the_idle_connection(engine: Engine) -> None:
    pool = engine.pool
    record = pool._pool.queue[0]  # type: ignore[attr-defined]
    record.info["idle_since"] = time.monotonic() - db.PING_WHEN_IDLE_SECONDS - 1


def test_a_connection_just_used_is_not_pinged(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = backend_pid(engine)
    sent = pings(engine, monkeypatch)
    assert [backend_pid(engine) for _ in range(5)] == [first] * 5
    assert sent == []


def test_an_idle_connection_that_died_is_replaced_before_use(
    engine: Engine, real_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    dead = backend_pid(engine)
    killer = create_engine(real_settings.database_url)
    with killer.connect() as other:
        assert other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": dead}).scalar()
    killer.dispose()
    age_the_idle_connection(engine)
    sent = pings(engine, monkeypatch)
    assert backend_pid(engine) != dead  # no error reached the caller
    assert sent == [1]
