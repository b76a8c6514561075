from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.services import real_env
from tests.stack import Stack


@pytest.fixture(scope="module")
def stack(migrated_database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """gunicorn, a worker and the scheduler on the real services, for one test module."""
    running = Stack(real_env(), tmp_path_factory.mktemp("stack"))
    try:
        running.web()
        running.worker()
        running.scheduler()
        yield running
    finally:
        running.stop()


@pytest.fixture
def keys(stack: Stack) -> dict[str, str]:
    return stack.new_tenant()


def log_dir(tmp_path: Path) -> Path:
    return tmp_path
