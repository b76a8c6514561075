from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from domain.settings import Settings
from hopper.bootstrap import bootstrap
from tests.factories import make_tenant, tenant_roles
from tests.services import real_env
from tests.stack import Stack, full_stack


@pytest.fixture(scope="module")
def stack(migrated_database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """gunicorn, a worker and the scheduler on the real services, for one test module."""
    with full_stack(real_env(), tmp_path_factory.mktemp("stack")) as running:
        yield running


@pytest.fixture
def keys(stack: Stack) -> dict[str, str]:
    return stack.new_tenant()


@pytest.fixture(scope="module")
def tenants(migrated_database: str) -> Iterator[Callable[[], dict[str, str]]]:
    """Makes tenants in-process, a key per role, as ``Stack.new_tenant`` does, with no stack."""
    wiring = bootstrap(Settings.from_env(real_env()), pool_size=1)
    yield lambda: tenant_roles(make_tenant(wiring.access))
    wiring.engine.dispose()


def log_dir(tmp_path: Path) -> Path:
    return tmp_path
