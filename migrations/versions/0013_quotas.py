"""Quotas: each tenant's ceilings on its unfinished jobs, stored payload bytes, API keys and
webhook endpoints.

- ``tenants.quota_*``: the tenant's own ceilings (``hopper tenants set-quota``); null, the
  configured default.
- ``tenant_usage``: each tenant's unfinished jobs and payload bytes, kept by triggers on
  ``jobs`` in up to 64 rows a tenant (a random one per change), so that concurrent submissions
  and finishes of one tenant do not queue behind a single row; a submission reads their sum.
  No foreign key: a tenant's deletion cascades into ``jobs``, whose trigger then counts its
  last change.
- The triggers: after an insert (per statement: a batch is one change a tenant), after a job
  becomes finished or unfinished again (per row, only then), after a delete (per statement:
  the retention purge's batches, a deleted job).

The revision counts what is there already, in the transaction that adds the triggers: writes to
``jobs`` wait for that one scan (about a second for a million jobs). SQLite has no statement
triggers: there the embedded default counts on demand.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

QUOTAS = (
    "quota_unfinished_jobs",
    "quota_payload_bytes",
    "quota_api_keys",
    "quota_webhook_endpoints",
)
# Each function adds its change to one of the tenant's 64 rows, at random.
COUNT_INSERTED = """
    CREATE FUNCTION hopper_count_inserted_jobs() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO tenant_usage (tenant_id, slot, unfinished_jobs, payload_bytes)
        SELECT tenant_id, floor(random() * 64)::int,
               count(*) FILTER (WHERE status IN ('queued', 'running')),
               coalesce(sum(octet_length(payload::text)), 0)
        FROM new_jobs GROUP BY tenant_id
        ON CONFLICT (tenant_id, slot) DO UPDATE SET
            unfinished_jobs = tenant_usage.unfinished_jobs + EXCLUDED.unfinished_jobs,
            payload_bytes = tenant_usage.payload_bytes + EXCLUDED.payload_bytes;
        RETURN NULL;
    END $$
"""
COUNT_DELETED = """
    CREATE FUNCTION hopper_count_deleted_jobs() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO tenant_usage (tenant_id, slot, unfinished_jobs, payload_bytes)
        SELECT tenant_id, floor(random() * 64)::int,
               -count(*) FILTER (WHERE status IN ('queued', 'running')),
               -coalesce(sum(octet_length(payload::text)), 0)
        FROM old_jobs GROUP BY tenant_id
        ON CONFLICT (tenant_id, slot) DO UPDATE SET
            unfinished_jobs = tenant_usage.unfinished_jobs + EXCLUDED.unfinished_jobs,
            payload_bytes = tenant_usage.payload_bytes + EXCLUDED.payload_bytes;
        RETURN NULL;
    END $$
"""
COUNT_STATUS = """
    CREATE FUNCTION hopper_count_job_status() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO tenant_usage (tenant_id, slot, unfinished_jobs, payload_bytes)
        VALUES (NEW.tenant_id, floor(random() * 64)::int,
                CASE WHEN NEW.status IN ('queued', 'running') THEN 1 ELSE -1 END, 0)
        ON CONFLICT (tenant_id, slot) DO UPDATE SET
            unfinished_jobs = tenant_usage.unfinished_jobs + EXCLUDED.unfinished_jobs;
        RETURN NULL;
    END $$
"""
TRIGGERS = (
    "CREATE TRIGGER jobs_usage_inserted AFTER INSERT ON jobs REFERENCING NEW TABLE AS new_jobs"
    " FOR EACH STATEMENT EXECUTE FUNCTION hopper_count_inserted_jobs()",
    "CREATE TRIGGER jobs_usage_deleted AFTER DELETE ON jobs REFERENCING OLD TABLE AS old_jobs"
    " FOR EACH STATEMENT EXECUTE FUNCTION hopper_count_deleted_jobs()",
    "CREATE TRIGGER jobs_usage_status AFTER UPDATE OF status ON jobs FOR EACH ROW"
    " WHEN ((OLD.status IN ('queued', 'running')) IS DISTINCT FROM"
    " (NEW.status IN ('queued', 'running')))"
    " EXECUTE FUNCTION hopper_count_job_status()",
)
COUNT_WHAT_IS_THERE = """
    INSERT INTO tenant_usage (tenant_id, slot, unfinished_jobs, payload_bytes)
    SELECT tenant_id, 0, count(*) FILTER (WHERE status IN ('queued', 'running')),
           coalesce(sum(octet_length(payload::text)), 0)
    FROM jobs GROUP BY tenant_id
"""


def upgrade() -> None:
    for name in QUOTAS:
        op.add_column("tenants", sa.Column(name, sa.BigInteger(), nullable=True))
    op.create_table(
        "tenant_usage",
        sa.Column("tenant_id", sa.String(40), nullable=False),
        sa.Column("slot", sa.SmallInteger(), nullable=False),
        sa.Column("unfinished_jobs", sa.BigInteger(), nullable=False),
        sa.Column("payload_bytes", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "slot", name="pk_tenant_usage"),
    )
    if op.get_bind().dialect.name != "postgresql":
        return
    for statement in (COUNT_INSERTED, COUNT_DELETED, COUNT_STATUS, *TRIGGERS):
        op.execute(statement)
    op.execute(COUNT_WHAT_IS_THERE)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for trigger in ("jobs_usage_inserted", "jobs_usage_deleted", "jobs_usage_status"):
            op.execute(f"DROP TRIGGER {trigger} ON jobs")
        for function in ("inserted_jobs", "deleted_jobs", "job_status"):
            op.execute(f"DROP FUNCTION hopper_count_{function}()")
    op.drop_table("tenant_usage")
    for name in QUOTAS:
        op.drop_column("tenants", name)
