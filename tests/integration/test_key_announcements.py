"""PostgreSQL announces each change of an API key that can make it unusable on
``hopper_keys_changed`` (migration 0006), whoever makes it, once it commits; a write of
``last_used_at`` alone is not announced (it happens once a minute a key, and must not empty every
process's cache)."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from sqlalchemy import text

from domain.key_cache import KEYS_CHANNEL
from domain.model import Role
from hopper.bootstrap import Container
from tests import services
from tests.factories import TenantKeys, unique


@pytest.fixture
def listener(migrated_database: str) -> Iterator[psycopg.Connection]:
    connection = services.listening(KEYS_CHANNEL)
    yield connection
    connection.close()


def heard(connection: psycopg.Connection, timeout: float = 0.3) -> list[str]:
    return [n.payload for n in connection.notifies(timeout=timeout) if n.channel == KEYS_CHANNEL]


def change(container: Container, sql: str, key_id: str, commit: bool = True) -> None:
    with container.engine.connect() as connection:
        connection.execute(text(sql), {"id": key_id})
        if commit:
            connection.commit()
        else:
            connection.rollback()


def test_revoking_expiring_and_deleting_a_key_are_announced_once_committed(
    container: Container, tenant: TenantKeys, listener: psycopg.Connection
) -> None:
    key = container.access.create_key(tenant.tenant_id, unique("k"), Role.READER).record.id
    assert heard(listener) == []  # a new key changes nothing that was cached

    revoke = "UPDATE api_keys SET revoked_at = now() WHERE id = :id"
    change(container, revoke, key, commit=False)
    assert heard(listener) == []
    change(container, "UPDATE api_keys SET expires_at = now() WHERE id = :id", key)
    assert heard(listener) == [key]
    change(container, revoke, key)
    assert heard(listener) == [key]
    change(container, "DELETE FROM api_keys WHERE id = :id", key)
    assert heard(listener) == [key]


def test_a_key_revoked_through_the_service_is_announced(
    container: Container, tenant: TenantKeys, listener: psycopg.Connection
) -> None:
    key = container.access.create_key(tenant.tenant_id, unique("k"), Role.READER).record.id
    container.access.revoke_key(container.access.authenticate(tenant.admin), key)
    assert heard(listener) == [key]


def test_writing_the_last_use_alone_is_not_announced(
    container: Container, tenant: TenantKeys, listener: psycopg.Connection
) -> None:
    key = container.access.create_key(tenant.tenant_id, unique("k"), Role.READER).record.id
    change(container, "UPDATE api_keys SET last_used_at = now() WHERE id = :id", key)
    change(container, "UPDATE api_keys SET name = 'renamed' WHERE id = :id", key)
    assert heard(listener) == []
