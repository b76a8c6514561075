"""Announce every change of an API key that can make it unusable, on ``hopper_keys_changed``.

Web processes cache the keys they authenticate (``domain.key_cache``) and listen on this
channel, so a revoked key is refused on every process within a second. A trigger, not the
application, sends the announcement, so that no way of changing a key can forget it: the API,
the CLI, or an operator's own SQL. Writes of ``last_used_at`` alone are not announced. Like
every ``NOTIFY``, it is delivered only if the change commits.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_CHANGED = " OR ".join(
    f"OLD.{column} IS DISTINCT FROM NEW.{column}"
    for column in ("key_hash", "tenant_id", "role", "expires_at", "revoked_at")
)


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return  # SQLite has no notifications: there a cached key is trusted for a second
    op.execute(
        """
        CREATE FUNCTION hopper_announce_key_change() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('hopper_keys_changed', OLD.id);
            RETURN NULL;
        END $$
        """
    )
    op.execute(
        "CREATE TRIGGER api_keys_changed AFTER UPDATE ON api_keys FOR EACH ROW "
        f"WHEN ({_CHANGED}) EXECUTE FUNCTION hopper_announce_key_change()"
    )
    op.execute(
        "CREATE TRIGGER api_keys_deleted AFTER DELETE ON api_keys FOR EACH ROW "
        "EXECUTE FUNCTION hopper_announce_key_change()"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for trigger in ("api_keys_changed", "api_keys_deleted"):
        op.execute(f"DROP TRIGGER {trigger} ON api_keys")
    op.execute("DROP FUNCTION hopper_announce_key_change()")
