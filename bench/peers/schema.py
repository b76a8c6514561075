"""The peers' one table, in a schema of their own beside Hopper's."""

from __future__ import annotations

from kombu import Connection, Exchange, Queue
from sqlalchemy import Column, DateTime, MetaData, Table, Text, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Engine

metadata = MetaData(schema="bench_peer")

jobs = Table(
    "jobs",
    metadata,
    Column("id", Text, primary_key=True),
    Column("type", Text, nullable=False),
    Column("payload", JSONB, nullable=False),
    Column("status", Text, nullable=False, server_default="queued"),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("finished_at", DateTime(timezone=True)),
)

QUEUE = "bench_peer"
EXCHANGE = Exchange(QUEUE, type="direct", durable=True)


def queue() -> Queue:
    return Queue(QUEUE, EXCHANGE, routing_key=QUEUE, durable=True)


def declare(connection: Connection) -> None:
    queue()(connection.default_channel).declare()


def reset(engine: Engine) -> None:
    """An empty table (the schema is made on first use)."""
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE SCHEMA IF NOT EXISTS bench_peer")
        metadata.drop_all(connection)
        metadata.create_all(connection)
