"""Concurrency and rate keys: a job may carry ``concurrency_key`` and ``rate_key`` (each scoped
to its tenant), which bound how many such jobs run at once and how often they start.

- ``jobs.concurrency_key``, ``jobs.rate_key``: nullable; the previous release's code neither
  reads nor writes them.
- ``concurrency_limits``, ``rate_limits``: a tenant's limit for a key (``PUT
  /v1/concurrency-limits/{key}``, ``PUT /v1/rate-limits/{key}``); without a row, the job type's
  default holds.
- ``rate_key_states``: when each rate key may next start a job.

Why each index exists (the query it serves):
- ``ix_jobs_concurrency_held``: per key, the jobs that hold one of its places: running, or
  dispatched and not yet claimed (the dispatcher's count, and the claim's recheck of the running
  ones); partial, so that jobs without a key, and finished ones, cost it nothing.
- ``ix_rate_key_states_next_at``: the rate keys resting now (a start later than now), a few
  among every key ever used: the dispatcher's pass, and why a job waits.
- ``ix_jobs_rate_in_flight``: the rate keys with a job dispatched and not yet claimed (one at a
  time per key, so that they start in submit order).
Both on ``jobs``, which exists and may be large and busy: built (and dropped) CONCURRENTLY.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WHEN = sa.DateTime(timezone=True)
HELD = sa.text(
    "concurrency_key IS NOT NULL AND status IN ('queued', 'running') "
    "AND (status = 'running' OR published_at IS NOT NULL)"
)
RATE_IN_FLIGHT = sa.text("rate_key IS NOT NULL AND status = 'queued' AND published_at IS NOT NULL")


def _per_key(name: str, *columns: sa.Column) -> None:  # type: ignore[type-arg]
    op.create_table(
        name,
        sa.Column("tenant_id", sa.String(40), nullable=False),
        sa.Column("key", sa.String(200), nullable=False),
        *columns,
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=f"fk_{name}_tenant_id_tenants", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("tenant_id", "key", name=f"pk_{name}"),
    )


def upgrade() -> None:
    op.add_column("jobs", sa.Column("concurrency_key", sa.String(200), nullable=True))
    op.add_column("jobs", sa.Column("rate_key", sa.String(200), nullable=True))
    _per_key(
        "concurrency_limits",
        sa.Column("limit", sa.Integer(), nullable=False),
        sa.Column("updated_at", WHEN, nullable=False),
    )
    _per_key(
        "rate_limits",
        sa.Column("rate", sa.String(32), nullable=False),
        sa.Column("updated_at", WHEN, nullable=False),
    )
    _per_key("rate_key_states", sa.Column("next_at", WHEN, nullable=False))
    with op.get_context().autocommit_block():
        op.create_index(
            "ix_rate_key_states_next_at",
            "rate_key_states",
            ["next_at"],
            postgresql_concurrently=True,
        )
        op.create_index(
            "ix_jobs_concurrency_held",
            "jobs",
            ["tenant_id", "concurrency_key"],
            postgresql_where=HELD,
            sqlite_where=HELD,
            postgresql_concurrently=True,
        )
        op.create_index(
            "ix_jobs_rate_in_flight",
            "jobs",
            ["tenant_id", "rate_key"],
            postgresql_where=RATE_IN_FLIGHT,
            sqlite_where=RATE_IN_FLIGHT,
            postgresql_concurrently=True,
        )


def downgrade() -> None:
    with op.get_context().autocommit_block():
        op.drop_index("ix_jobs_rate_in_flight", table_name="jobs", postgresql_concurrently=True)
        op.drop_index("ix_jobs_concurrency_held", table_name="jobs", postgresql_concurrently=True)
        op.drop_index(
            "ix_rate_key_states_next_at",
            table_name="rate_key_states",
            postgresql_concurrently=True,
        )
    op.drop_table("rate_key_states")
    op.drop_table("rate_limits")
    op.drop_table("concurrency_limits")
    op.drop_column("jobs", "rate_key")
    op.drop_column("jobs", "concurrency_key")
