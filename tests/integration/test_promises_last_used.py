"""`last_used_at` is written at most once a minute per key, not on every request (README, "Keys,
limits and safety"), on real PostgreSQL. The minute is aged in the database, never waited for,
and every write the app sends is counted at the engine, so a write that changes nothing counts
too."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import event, text

from domain.model import Role
from domain.representation import rfc3339
from hopper.bootstrap import Container
from tests.factories import TenantKeys, unique


@contextmanager
def key_writes(container: Container) -> Iterator[list[str]]:
    """Every UPDATE of ``api_keys`` the app's engine sends while the block runs."""
    sent: list[str] = []

    def note(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().upper().startswith("UPDATE API_KEYS"):
            sent.append(statement)

    event.listen(container.engine, "before_cursor_execute", note)
    try:
        yield sent
    finally:
        event.remove(container.engine, "before_cursor_execute", note)


@contextmanager
def rows_written(container: Container) -> Iterator[list[int]]:
    """How many ``api_keys`` rows each UPDATE the app's engine sends changes."""
    counts: list[int] = []

    def note(_conn: Any, cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().upper().startswith("UPDATE API_KEYS"):
            counts.append(cursor.rowcount)

    event.listen(container.engine, "after_cursor_execute", note)
    try:
        yield counts
    finally:
        event.remove(container.engine, "after_cursor_execute", note)


def last_used(container: Container, key_id: str) -> datetime | None:
    with container.engine.connect() as connection:
        value: datetime | None = connection.execute(
            text("SELECT last_used_at FROM api_keys WHERE id = :id"), {"id": key_id}
        ).scalar_one()
        return value


def age(container: Container, key_id: str, seconds: int) -> datetime:
    """Set the key's last use ``seconds`` before the database's now; returns the new value.
    The process's cached entry comes up for refresh too (as it does every 30 s), so that the
    next request reads the row."""
    with container.engine.begin() as connection:
        value: datetime = connection.execute(
            text(
                "UPDATE api_keys SET last_used_at = now() - make_interval(secs => :s) "
                "WHERE id = :id RETURNING last_used_at"
            ),
            {"s": seconds, "id": key_id},
        ).scalar_one()
    container.key_cache.clear()
    return value


def use(client: FlaskClient, secret: str, times: int) -> None:
    for _ in range(times):
        answer = client.get("/v1/jobs?limit=1", headers={"Authorization": f"Bearer {secret}"})
        assert answer.status_code == 200


def test_last_used_at_is_written_at_most_once_a_minute(
    client: FlaskClient, container: Container, tenant: TenantKeys
) -> None:
    made = container.access.create_key(tenant.tenant_id, unique("busy"), Role.READER)
    assert last_used(container, made.record.id) is None

    with key_writes(container) as first:
        use(client, made.secret, 1)
    first_use = last_used(container, made.record.id)
    assert first_use is not None and len(first) == 1  # the first use is written

    with key_writes(container) as burst:
        use(client, made.secret, 30)
    assert burst == [] and last_used(container, made.record.id) == first_use

    # 50 s ago is still within the minute: the next requests must not write.
    aged = age(container, made.record.id, 50)
    with key_writes(container) as within:
        use(client, made.secret, 10)
    assert within == [] and last_used(container, made.record.id) == aged

    # Past the minute, one request writes, and the ones after it do not.
    stale = age(container, made.record.id, 61)
    with key_writes(container) as past:
        use(client, made.secret, 10)
    renewed = last_used(container, made.record.id)
    assert len(past) == 1, past
    assert renewed is not None and (renewed - stale).total_seconds() >= 61

    listed = client.get("/v1/api-keys?limit=100", headers=tenant.headers("admin")).get_json()
    shown = next(k for k in listed["data"] if k["id"] == made.record.id)
    assert shown["last_used_at"] == rfc3339(renewed)


def test_concurrent_requests_past_the_minute_write_the_row_once(
    app: Flask, container: Container, tenant: TenantKeys
) -> None:
    """Requests that all read a stale value at once still write it once: the write itself is
    conditional on the value being stale, so a second writer finds nothing to change."""
    made = container.access.create_key(tenant.tenant_id, unique("crowd"), Role.READER)
    use(app.test_client(), made.secret, 1)
    age(container, made.record.id, 61)
    barrier = threading.Barrier(12)

    def request() -> None:
        barrier.wait()
        use(app.test_client(), made.secret, 1)

    with rows_written(container) as written:
        threads = [threading.Thread(target=request) for _ in range(12)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert sum(written) == 1, written
