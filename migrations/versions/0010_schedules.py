"""Schedules: jobs submitted on a cron or an interval, each slot exactly once.

``schedules`` holds each schedule: its cadence (a cron in a time zone, or an interval after its
anchor), the job it submits (the body of ``POST /v1/jobs``, its secret fields redacted, their
values in ``sealed``), and the first slot not yet handled (``next_run_at``, null while
disabled). ``schedule_runs`` holds each slot a scheduler handled; its primary key, the schedule
and the slot, is what makes a slot fire once however many schedulers run. ``jobs.schedule_id``
names the schedule a job was fired by.

Why each index exists (the query it serves):
- ``uq_schedules_tenant_id_name``: a name is unique in its tenant.
- ``ix_schedules_tenant_id_id``: a tenant's schedules, newest first (``GET /v1/schedules``).
- ``ix_schedules_due``: the scheduler's scan for due schedules, partial: only those with a next
  slot (the enabled ones).
- ``ix_schedule_runs_slot``: the retention purge of old slots.
- ``ix_jobs_tenant_id_schedule_id_id``: ``GET /v1/jobs?schedule_id=``, newest first, as the
  other filters are served (ix_jobs_tenant_id_type_id); partial, so that submitted jobs, most of
  them, cost it nothing. ``jobs`` exists and may be large and busy, so the index is built (and
  dropped) CONCURRENTLY, outside the revision's transaction (see 0002).

Expand only: two new tables and a nullable column. The previous release's code neither reads
nor writes them, and its inserts leave ``schedule_id`` null.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Document = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
WHEN = sa.DateTime(timezone=True)
HAS_NEXT = sa.text("next_run_at IS NOT NULL")
SCHEDULED = sa.text("schedule_id IS NOT NULL")


def upgrade() -> None:
    op.create_table(
        "schedules",
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("tenant_id", sa.String(40), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("cron", sa.String(200), nullable=True),
        sa.Column("interval_seconds", sa.Integer(), nullable=True),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("anchor", WHEN, nullable=False),
        sa.Column("job", Document, nullable=False),
        sa.Column("sealed", sa.Text(), nullable=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("overlap", sa.String(8), nullable=False),
        sa.Column("catch_up", sa.String(8), nullable=False),
        sa.Column("next_run_at", WHEN, nullable=True),
        sa.Column("last_run_at", WHEN, nullable=True),
        sa.Column("last_job_id", sa.String(40), nullable=True),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("updated_at", WHEN, nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name="fk_schedules_tenant_id_tenants", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_schedules"),
        sa.UniqueConstraint("tenant_id", "name", name="uq_schedules_tenant_id_name"),
    )
    op.create_index("ix_schedules_tenant_id_id", "schedules", ["tenant_id", "id"])
    op.create_index(
        "ix_schedules_due",
        "schedules",
        ["next_run_at"],
        postgresql_where=HAS_NEXT,
        sqlite_where=HAS_NEXT,
    )
    op.create_table(
        "schedule_runs",
        sa.Column("schedule_id", sa.String(40), nullable=False),
        sa.Column("slot", WHEN, nullable=False),
        sa.Column("job_id", sa.String(40), nullable=True),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.ForeignKeyConstraint(
            ["schedule_id"],
            ["schedules.id"],
            name="fk_schedule_runs_schedule_id_schedules",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("schedule_id", "slot", name="pk_schedule_runs"),
    )
    op.create_index("ix_schedule_runs_slot", "schedule_runs", ["slot"])
    op.add_column("jobs", sa.Column("schedule_id", sa.String(40), nullable=True))
    with op.get_context().autocommit_block():
        op.create_index(
            "ix_jobs_tenant_id_schedule_id_id",
            "jobs",
            ["tenant_id", "schedule_id", "id"],
            postgresql_where=SCHEDULED,
            sqlite_where=SCHEDULED,
            postgresql_concurrently=True,
        )


def downgrade() -> None:
    with op.get_context().autocommit_block():
        op.drop_index(
            "ix_jobs_tenant_id_schedule_id_id", table_name="jobs", postgresql_concurrently=True
        )
    op.drop_column("jobs", "schedule_id")
    op.drop_table("schedule_runs")
    op.drop_table("schedules")
