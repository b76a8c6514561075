"""Engines: connection pooling and dialect settings for PostgreSQL and the embedded SQLite."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.pool import ConnectionPoolEntry, NullPool

from domain.settings import Settings

# A pooled connection idle longer than this is pinged before use; a busy one is not.
PING_WHEN_IDLE_SECONDS = 1.0
INSERT_ROWS_A_STATEMENT = 100


def make_engine(settings: Settings, *, pool_size: int = 5, max_overflow: int = 0) -> Engine:
    if settings.is_postgres:
        engine = create_engine(
            settings.database_url,
            pool_size=pool_size,
            max_overflow=max_overflow,
            pool_use_lifo=True,  # the same few connections stay busy, the rest age and get pinged
            # A multi-row INSERT of more rows than this is sent as several: a 500-job batch as
            # one statement peaked the web process 20 MB higher, and ran slower.
            insertmanyvalues_page_size=INSERT_ROWS_A_STATEMENT,
            pool_recycle=1800,
            pool_timeout=5,
            connect_args={"connect_timeout": 5, "application_name": "hopper"},
        )
        _ping_when_idle(engine)
        return engine
    return _sqlite_engine(settings.database_url)


def _ping_when_idle(engine: Engine) -> None:
    """A ping on every checkout costs each transaction a round trip. A connection that was in
    use a moment ago is alive as surely as a ping could tell, so only one that sat idle is
    pinged; a dead one is replaced before anything runs on it. A connection that dies in use
    fails its statement, and SQLAlchemy then drops every connection of the pool made before."""

    @event.listens_for(engine, "checkin")
    def _checked_in(_dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checked_out(dbapi_connection: Any, record: ConnectionPoolEntry, _proxy: Any) -> None:
        idle_since = record.info.get("idle_since")
        if idle_since is None or time.monotonic() - idle_since < PING_WHEN_IDLE_SECONDS:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except Exception as exc:  # the pool retries with a new connection
            raise DisconnectionError(str(exc)) from exc


def _sqlite_engine(url: str) -> Engine:
    path = url.split("///", 1)[-1]
    if path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    # One connection per use: SQLite connections are cheap and must not cross a fork.
    engine = create_engine(url, poolclass=NullPool, connect_args={"timeout": 30})

    @event.listens_for(engine, "connect")
    def _configure(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves, below
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection: Any) -> None:
        # Take the write lock up front: a deferred transaction that reads and then writes can
        # fail with "database is locked" without waiting for the busy timeout.
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine
