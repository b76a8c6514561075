"""Queue pauses: an operator or a tenant's admin holds a queue while a downstream is down.

A row pauses one queue for one tenant, or for every tenant when ``tenant_id`` is ``*`` (an
operator's ``hopper queues pause``; there is no tenant of that id, so the column has no foreign
key). Jobs are still accepted while a queue is paused; workers leave them queued and the
scheduler does not publish them until the pause is lifted. The table is new, so its primary key
is built with it; nothing else changes, and the previous release's code ignores the table.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "queue_pauses",
        sa.Column("queue", sa.String(100), nullable=False),
        sa.Column("tenant_id", sa.String(40), nullable=False),
        sa.Column("paused_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("queue", "tenant_id", name="pk_queue_pauses"),
    )


def downgrade() -> None:
    op.drop_table("queue_pauses")
