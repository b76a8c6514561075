"""HTTP-target jobs: each tenant's signing secret and allow-list, and sealed payload fields.

``http_target_settings`` holds, per tenant, the secret that signs its ``http`` jobs' requests
(encrypted; the previous one kept signing for 24 h after a rotation) and the hosts its admin
allowed on private, loopback and link-local addresses. ``jobs.sealed`` holds the encrypted
values of a payload's secret fields (the ``http`` type's ``secret_headers``), which the payload
itself shows as ``[redacted]``. Both are new and nullable, so the previous release's code, which
neither reads nor writes them, runs unchanged beside this schema.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Document = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "http_target_settings",
        sa.Column("tenant_id", sa.String(40), nullable=False),
        sa.Column("secret_ciphertext", sa.Text(), nullable=True),
        sa.Column("previous_secret_ciphertext", sa.Text(), nullable=True),
        sa.Column("previous_secret_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("allowed_hosts", Document, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name="fk_http_target_settings_tenant_id_tenants",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", name="pk_http_target_settings"),
    )
    op.add_column("jobs", sa.Column("sealed", sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column("jobs", "sealed")
    op.drop_table("http_target_settings")
