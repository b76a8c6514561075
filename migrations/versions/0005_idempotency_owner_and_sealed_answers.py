"""Idempotency records: the API key that made the request, and answers sealed at rest.

A stored answer may carry a secret (a new API key, a rotated webhook secret), so answers are now
kept encrypted under HOPPER_ENCRYPTION_KEYS, and replayed only to the key that made the request.
Answers stored in clear before this revision are scrubbed here: their rows stay, with no owner,
so a retry of such a request is refused (409) rather than run twice. They expire within the
idempotency retention (24 hours by default).

Downgrade drops the owner column; the scrubbed answers do not come back.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("idempotency_records", sa.Column("api_key_id", sa.String(40), nullable=True))
    op.execute("UPDATE idempotency_records SET response_body = NULL")


def downgrade() -> None:
    op.drop_column("idempotency_records", "api_key_id")
