"""Announce each job that finishes on ``hopper_job_finished``, from a trigger.

Long-polls wait on this channel (``hopper.notifications``). The application sent the
``NOTIFY`` itself, one statement more in every transaction that ended a job; the trigger sends it
inside the ``UPDATE`` that ends it, so a worker's finish costs one round trip less, and no way
of ending a job can forget it. Like every ``NOTIFY``, it is delivered only if the change commits,
once per job and transaction.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return  # SQLite has no notifications: there a long-poll looks again twice a second
    op.execute(
        """
        CREATE FUNCTION hopper_announce_job_finished() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('hopper_job_finished', NEW.id);
            RETURN NULL;
        END $$
        """
    )
    op.execute(
        "CREATE TRIGGER jobs_finished AFTER UPDATE OF status ON jobs FOR EACH ROW "
        "WHEN (OLD.status IS DISTINCT FROM NEW.status "
        "AND NEW.status IN ('succeeded', 'failed', 'canceled')) "
        "EXECUTE FUNCTION hopper_announce_job_finished()"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER jobs_finished ON jobs")
    op.execute("DROP FUNCTION hopper_announce_job_finished()")
