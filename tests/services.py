"""Where the real services are for tests: PostgreSQL, RabbitMQ and Redis on 127.0.0.1.

`make test` (scripts/services.sh) creates the database and the vhost. HOPPER_TEST_DATABASE and
HOPPER_TEST_VHOST name them, so two suites on one machine never share data.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import psycopg
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
DATABASE = os.environ.get("HOPPER_TEST_DATABASE", "hopper_test")
VHOST = os.environ.get("HOPPER_TEST_VHOST", "hopper_test")
REDIS_DB = os.environ.get("HOPPER_TEST_REDIS_DB", "5")

DATABASE_URL = f"postgresql+psycopg://postgres@127.0.0.1:5432/{DATABASE}"
BROKER_URL = f"amqp://guest:guest@127.0.0.1:5672/{VHOST}"
REDIS_URL = f"redis://127.0.0.1:6379/{REDIS_DB}"


TEST_ENCRYPTION_KEY = "eVElifrZZxG6FzhyHge64BouF0CklwOENwwD9c8ONiw="


def real_env(**extra: str) -> dict[str, str]:
    """The environment of a stack on the real services. Outbound traffic stays on loopback."""
    return {
        "DATABASE_URL": DATABASE_URL,
        "BROKER_URL": BROKER_URL,
        "REDIS_URL": REDIS_URL,
        "HOPPER_OUTBOUND_ALLOWED_NETWORKS": "127.0.0.0/8",
        "HOPPER_OUTBOUND_ALLOW_PRIVATE": "true",
        "HOPPER_OUTBOUND_ALLOW_HTTP": "true",
        "HOPPER_RETRY_BASE_SECONDS": "0.2",
        "HOPPER_RETRY_MAX_SECONDS": "1",
        "HOPPER_LOG_FORMAT": "json",
        # Tests drive more traffic than one client should; the limits have tests of their own.
        "HOPPER_RATE_LIMIT_DEFAULT": "2000/second",
        "HOPPER_RATE_LIMIT_CREATE": "2000/second",
        "HOPPER_RATE_LIMIT_AUTH_FAILURES": "2000/second",
        # A key for test data only: never use it for anything real.
        "HOPPER_ENCRYPTION_KEYS": TEST_ENCRYPTION_KEY,
        **extra,
    }


def listening(channel: str) -> psycopg.Connection:
    """A connection of the test's own that LISTENs on ``channel`` (close it after)."""
    url = make_url(DATABASE_URL)
    connection = psycopg.connect(
        host=url.host, port=url.port, user=url.username, dbname=url.database, autocommit=True
    )
    connection.execute(f"LISTEN {channel}")
    return connection


def pg_dump(*args: str) -> str:
    """The test database's rows (``--data-only``) as ``pg_dump`` writes them."""
    return subprocess.run(
        ["pg_dump", "-h", "127.0.0.1", "-U", "postgres", "--data-only", *args, DATABASE],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
