"""Fixtures shared by the integration, end-to-end and fault suites (the unit suite needs none)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, create_engine, text

from domain.settings import Settings
from hopper.bootstrap import Container, bootstrap
from hopper.migrate import migrate
from tests import services
from tests.factories import TenantKeys, make_tenant


@pytest.fixture(scope="session")
def real_settings() -> Settings:
    return Settings.from_env(services.real_env())


@pytest.fixture(scope="session")
def migrated_database(real_settings: Settings) -> str:
    """A clean schema in the test database, migrated to head once per session."""
    engine = create_engine(services.DATABASE_URL)
    with engine.begin() as connection:
        connection.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        connection.execute(text("CREATE SCHEMA public"))
    engine.dispose()
    migrate(real_settings)
    return services.DATABASE_URL


@pytest.fixture(scope="session")
def container(real_settings: Settings, migrated_database: str) -> Iterator[Container]:
    """The wiring on real PostgreSQL and RabbitMQ, as the web app builds it."""
    wiring = bootstrap(real_settings)
    yield wiring
    wiring.engine.dispose()


@pytest.fixture
def tenant(container: Container) -> TenantKeys:
    return make_tenant(container.access)


@pytest.fixture
def other_tenant(container: Container) -> TenantKeys:
    return make_tenant(container.access)


@pytest.fixture(scope="session")
def db(migrated_database: str) -> Iterator[Engine]:
    """An engine of the tests' own on the test database, to look at rows directly."""
    engine = create_engine(services.DATABASE_URL)
    yield engine
    engine.dispose()
