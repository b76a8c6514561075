"""Tenants, API keys, jobs and their attempts: the schema of the first release.

Why each index exists (the query it serves):
- ix_api_keys_key_hash (unique): authentication looks a presented key up by its hash.
- ix_jobs_tenant_id_id: GET /v1/jobs, newest first by id (ids are time-ordered), cursor = id <.
- ix_jobs_tenant_id_status_id / ix_jobs_tenant_id_type_id: the same list filtered by status / type.
- ix_jobs_tenant_id_created_at: the created_after / created_before filters.
- ix_jobs_due (partial, queued only): the scheduler's scan for queued jobs whose run_at has come
  and whose publish is missing or stale.
- ix_jobs_lease (partial, running only): the scheduler's scan for leases that have lapsed.
- ix_job_attempts_job_id_number: GET /v1/jobs/{id}/attempts, oldest first.
Workers claim a job by its primary key, so claims need no index of their own.

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from domain.model.base import UTCDateTime

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Document = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "tenants",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("name", name="uq_tenants_name"),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column(
            "tenant_id",
            sa.String(40),
            sa.ForeignKey("tenants.id", ondelete="CASCADE", name="fk_api_keys_tenant_id_tenants"),
            nullable=False,
        ),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("prefix", sa.String(16), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=True),
        sa.Column("last_used_at", UTCDateTime(), nullable=True),
        sa.Column("revoked_at", UTCDateTime(), nullable=True),
        sa.CheckConstraint("role in ('reader', 'submitter', 'admin')", name="role"),
    )
    op.create_index("ix_api_keys_key_hash", "api_keys", ["key_hash"], unique=True)
    op.create_index("ix_api_keys_tenant_id_id", "api_keys", ["tenant_id", "id"])
    op.create_table(
        "jobs",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column(
            "tenant_id",
            sa.String(40),
            sa.ForeignKey("tenants.id", ondelete="CASCADE", name="fk_jobs_tenant_id_tenants"),
            nullable=False,
        ),
        sa.Column("type", sa.String(100), nullable=False),
        sa.Column("queue", sa.String(100), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("priority", sa.String(8), nullable=False),
        sa.Column("payload", Document, nullable=False),
        sa.Column("result", Document, nullable=True),
        sa.Column("error", Document, nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("attempts_total", sa.Integer(), nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("timeout_seconds", sa.Integer(), nullable=False),
        sa.Column("metadata", Document, nullable=False),
        sa.Column("run_at", UTCDateTime(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=True),
        sa.Column("finished_at", UTCDateTime(), nullable=True),
        sa.Column("cancel_requested", sa.Boolean(), nullable=False),
        sa.Column("current_attempt_id", sa.String(40), nullable=True),
        sa.Column("lease_expires_at", UTCDateTime(), nullable=True),
        sa.Column("published_at", UTCDateTime(), nullable=True),
        sa.Column("request_id", sa.String(200), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "status in ('queued', 'running', 'succeeded', 'failed', 'canceled')", name="status"
        ),
        sa.CheckConstraint("priority in ('high', 'normal', 'low')", name="priority"),
        sa.CheckConstraint("max_attempts between 1 and 25", name="max_attempts"),
        sa.CheckConstraint("timeout_seconds between 1 and 86400", name="timeout_seconds"),
    )
    op.create_index("ix_jobs_tenant_id_id", "jobs", ["tenant_id", "id"])
    op.create_index("ix_jobs_tenant_id_status_id", "jobs", ["tenant_id", "status", "id"])
    op.create_index("ix_jobs_tenant_id_type_id", "jobs", ["tenant_id", "type", "id"])
    op.create_index("ix_jobs_tenant_id_created_at", "jobs", ["tenant_id", "created_at"])
    op.create_index(
        "ix_jobs_due",
        "jobs",
        ["run_at"],
        postgresql_where=sa.text("status = 'queued'"),
        sqlite_where=sa.text("status = 'queued'"),
    )
    op.create_index(
        "ix_jobs_lease",
        "jobs",
        ["lease_expires_at"],
        postgresql_where=sa.text("status = 'running'"),
        sqlite_where=sa.text("status = 'running'"),
    )
    op.create_table(
        "job_attempts",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column(
            "job_id",
            sa.String(40),
            sa.ForeignKey("jobs.id", ondelete="CASCADE", name="fk_job_attempts_job_id_jobs"),
            nullable=False,
        ),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("error", Document, nullable=True),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("finished_at", UTCDateTime(), nullable=True),
        sa.Column("worker", sa.String(200), nullable=True),
        sa.CheckConstraint("status in ('running', 'succeeded', 'failed')", name="status"),
    )
    op.create_index("ix_job_attempts_job_id_number", "job_attempts", ["job_id", "number"])


def downgrade() -> None:
    op.drop_table("job_attempts")
    op.drop_table("jobs")
    op.drop_table("api_keys")
    op.drop_table("tenants")
