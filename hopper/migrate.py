"""``hopper migrate``: Alembic's upgrade to head over Hopper's own engine. Safe to run twice."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from alembic import command
from alembic.config import Config

from domain.db import make_engine
from domain.settings import Settings

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config() -> Config:
    config = Config(str(MIGRATIONS / "alembic.ini"))
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def migrate(settings: Settings, revision: str = "head") -> None:
    _run(settings, command.upgrade, revision)


def downgrade(settings: Settings, revision: str) -> None:
    _run(settings, command.downgrade, revision)


def _run(settings: Settings, step: Callable[[Config, str], None], revision: str) -> None:
    engine = make_engine(settings, pool_size=1)
    config = alembic_config()
    # Not in a transaction: each revision runs in its own (migrations/env.py), so that one can
    # build an index CONCURRENTLY outside any.
    with engine.connect() as connection:
        config.attributes["connection"] = connection
        step(config, revision)
    engine.dispose()
