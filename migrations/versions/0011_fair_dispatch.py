"""Fair dispatch: the database chooses which job a queue's window takes next.

A job is ready while it is queued and not dispatched (``published_at`` null), and in flight from
its dispatch until a worker claims it. The dispatcher keeps each queue's window of jobs in
flight full, choosing round-robin between tenants by ``tenants.weight`` (default 1), then by
priority and age within a tenant (``domain.dispatch``).

- ``dispatch_clocks``: each queue's virtual time; its row is also the lock that lets one
  dispatcher at a time fill the queue's window.
- ``dispatch_shares``: each tenant's pass in each queue (how far it has been served).

Why each index exists (the query it serves):
- ``ix_jobs_ready``: a tenant's best ready jobs in a queue, in the order they go (priority,
  then due time, then id), and the loose scan that finds the tenants and queues with ready jobs;
  partial, so that finished jobs, most of them, cost it nothing. The priority's rank is an
  expression, which the dispatcher's query repeats word for word.
- ``ix_jobs_in_flight``: the count of a queue's jobs in flight (those dispatched since the
  republish threshold, a window's worth per queue), and the scan for dispatches whose message
  was lost (older than ``HOPPER_REPUBLISH_AFTER_SECONDS``).
``jobs`` exists and may be large and busy, so both are built (and dropped) CONCURRENTLY,
outside the revision's transaction (see 0002).

Expand only: two new tables, a column with a default, two indexes. The previous release's code
publishes what it submits itself (``published_at`` set), which the dispatcher counts as in
flight, and its scheduler publishes ready jobs as it always did.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

RANK = sa.text("(CASE priority WHEN 'high' THEN 0 WHEN 'normal' THEN 1 ELSE 2 END)")
READY = sa.text("status = 'queued' AND published_at IS NULL")
IN_FLIGHT = sa.text("status = 'queued' AND published_at IS NOT NULL")


def upgrade() -> None:
    op.add_column("tenants", sa.Column("weight", sa.Integer(), nullable=False, server_default="1"))
    op.create_table(
        "dispatch_clocks",
        sa.Column("queue", sa.String(100), nullable=False),
        sa.Column("clock", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("queue", name="pk_dispatch_clocks"),
    )
    op.create_table(
        "dispatch_shares",
        sa.Column("queue", sa.String(100), nullable=False),
        sa.Column("tenant_id", sa.String(40), nullable=False),
        sa.Column("passed", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name="fk_dispatch_shares_tenant_id_tenants",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("queue", "tenant_id", name="pk_dispatch_shares"),
    )
    with op.get_context().autocommit_block():
        op.create_index(
            "ix_jobs_ready",
            "jobs",
            ["queue", "tenant_id", RANK, "run_at", "id"],
            postgresql_where=READY,
            sqlite_where=READY,
            postgresql_concurrently=True,
        )
        op.create_index(
            "ix_jobs_in_flight",
            "jobs",
            ["published_at"],
            postgresql_where=IN_FLIGHT,
            sqlite_where=IN_FLIGHT,
            postgresql_concurrently=True,
        )


def downgrade() -> None:
    with op.get_context().autocommit_block():
        op.drop_index("ix_jobs_in_flight", table_name="jobs", postgresql_concurrently=True)
        op.drop_index("ix_jobs_ready", table_name="jobs", postgresql_concurrently=True)
    op.drop_table("dispatch_shares")
    op.drop_table("dispatch_clocks")
    op.drop_column("tenants", "weight")
