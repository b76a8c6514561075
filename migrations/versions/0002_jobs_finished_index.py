"""An index for the retention purge: finished jobs by when they finished.

The scheduler deletes finished jobs (and, by cascade, their attempts) once they are older than
the retention period, a small batch at a time. ix_jobs_finished serves that scan: partial, so it
holds only finished jobs, and ordered by finished_at so the oldest come first.

``jobs`` already exists and may be large and busy when this runs, so on PostgreSQL the index is
built (and dropped) CONCURRENTLY: that takes no lock that stops writes. CONCURRENTLY may not run
inside a transaction, hence the autocommit block (each revision has a transaction of its own,
migrations/env.py; the block commits it first and the version is recorded after the build). A
concurrent build that fails leaves an invalid ix_jobs_finished behind: drop it (``DROP INDEX
CONCURRENTLY ix_jobs_finished``) and migrate again. SQLite ignores ``postgresql_concurrently``.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FINISHED = sa.text("status IN ('succeeded', 'failed', 'canceled')")


def upgrade() -> None:
    with op.get_context().autocommit_block():
        op.create_index(
            "ix_jobs_finished",
            "jobs",
            ["finished_at"],
            postgresql_where=FINISHED,
            sqlite_where=FINISHED,
            postgresql_concurrently=True,
        )


def downgrade() -> None:
    with op.get_context().autocommit_block():
        op.drop_index("ix_jobs_finished", table_name="jobs", postgresql_concurrently=True)
