"""Alembic environment: runs the migrations against Hopper's configured database."""

from alembic import context
from sqlalchemy import Connection

from domain.model import Base

target_metadata = Base.metadata


def run_migrations(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through `hopper migrate`, which passes the connection")
run_migrations(connection)
