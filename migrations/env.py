"""Alembic environment: runs the migrations against Hopper's configured database."""

from alembic import context
from sqlalchemy import Connection

from domain.model import Base

target_metadata = Base.metadata


def run_migrations(connection: Connection) -> None:
    # Each revision commits on its own (transaction_per_migration), so that one may step out of
    # its transaction, as an index built CONCURRENTLY on a live table must (``autocommit_block``),
    # and a revision that fails leaves the ones before it applied.
    if connection.in_transaction():
        raise RuntimeError("pass a connection outside a transaction: each revision opens its own")
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        transaction_per_migration=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through `hopper migrate`, which passes the connection")
run_migrations(connection)
