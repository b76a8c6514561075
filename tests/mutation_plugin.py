"""A pytest plugin for `make mutation` only (``-p tests.mutation_plugin``, set in pyproject's
[tool.mutmut]): every process that mutmut starts gets a PostgreSQL database of its own.

mutmut tests mutants side by side, each in a fresh pytest session, and the session's
``migrated_database`` drops and rebuilds its database's schema. Sharing one database, two mutants
would pull it from under each other. So the database is named after the process before
``tests.services`` is imported (this module loads before any conftest), created just before the
session's first integration test (unit tests run first), and dropped when the session ends.
scripts/mutation.sh sets HOPPER_MUTATION_RUN and drops whatever a killed process left behind.

The broker is kombu's in-memory transport: the selected integration tests drive the domain on
PostgreSQL and look at no queue, and thousands of mutants must not fill the shared vhost with
commands that nothing consumes (or that another suite's worker would take).
"""

from __future__ import annotations

import os

import pytest

RUN = os.environ.get("HOPPER_MUTATION_RUN")
PREFIX = f"hopper_mut_{RUN}_"
if RUN:
    os.environ["HOPPER_TEST_DATABASE"] = f"{PREFIX}{os.getpid()}"

_created: list[str] = []


def pytest_configure(config: pytest.Config) -> None:
    if RUN:
        from tests import services

        services.BROKER_URL = "memory://"


def _admin(sql: str) -> None:
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    from tests import services

    url = make_url(services.DATABASE_URL).set(database="postgres")
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            connection.execute(text(sql))
    finally:
        engine.dispose()


def _integration(item: pytest.Item) -> bool:
    return item.nodeid.startswith("tests/integration/")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Unit tests first: mutmut stops a mutant's run at its first failing test, so a mutant that
    a unit test kills costs milliseconds, not a database and a migration."""
    if RUN:
        items.sort(key=_integration)  # stable: each group keeps its order


def pytest_runtest_setup(item: pytest.Item) -> None:
    """The database, made just before the first integration test sets up its fixtures."""
    if RUN and not _created and _integration(item):
        name = os.environ["HOPPER_TEST_DATABASE"]
        _admin(f'CREATE DATABASE "{name}"')
        _created.append(name)


def pytest_unconfigure(config: pytest.Config) -> None:
    while _created:
        _admin(f'DROP DATABASE IF EXISTS "{_created.pop()}" WITH (FORCE)')
