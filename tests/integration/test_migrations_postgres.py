"""Every migration, up and down, on a fresh PostgreSQL database of the test's own.

The session's ``migrated_database`` only ever goes up, once, on the shared ``hopper_test``. Here
each revision is applied one at a time and its schema checked, then the whole chain goes down to
base (nothing of ours may be left behind) and up again (to the very schema of the first climb),
and the result must match the mapped model, as ``alembic revision --autogenerate`` would see it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, UniqueConstraint, create_engine, inspect, text

import domain.schedules.model  # maps the schedule tables onto Base.metadata
import domain.webhooks.model  # noqa: F401  (maps the webhook tables onto Base.metadata)
from domain.model import Base
from domain.settings import Settings
from hopper.migrate import alembic_config, downgrade, migrate
from tests import services
from tests.scale import own_database

# What each revision adds: tables, and (table, index) / (table, column) that must appear with it.
ADDS: dict[str, dict[str, set[Any]]] = {
    "0001": {
        "tables": {"tenants", "api_keys", "jobs", "job_attempts"},
        "indexes": {
            ("api_keys", "ix_api_keys_key_hash"),
            ("api_keys", "ix_api_keys_tenant_id_id"),
            ("jobs", "ix_jobs_tenant_id_id"),
            ("jobs", "ix_jobs_tenant_id_status_id"),
            ("jobs", "ix_jobs_tenant_id_type_id"),
            ("jobs", "ix_jobs_tenant_id_created_at"),
            ("jobs", "ix_jobs_due"),
            ("jobs", "ix_jobs_lease"),
            ("job_attempts", "ix_job_attempts_job_id_number"),
        },
        "columns": set(),
    },
    "0002": {"tables": set(), "indexes": {("jobs", "ix_jobs_finished")}, "columns": set()},
    "0003": {
        "tables": {
            "webhook_endpoints",
            "webhook_events",
            "webhook_deliveries",
            "webhook_delivery_attempts",
        },
        "indexes": {
            ("webhook_endpoints", "ix_webhook_endpoints_tenant_id_id"),
            ("webhook_events", "ix_webhook_events_created_at"),
            ("webhook_deliveries", "ix_webhook_deliveries_endpoint_id_id"),
            ("webhook_deliveries", "ix_webhook_deliveries_due"),
            ("webhook_deliveries", "ix_webhook_deliveries_in_flight"),
            ("webhook_delivery_attempts", "ix_webhook_delivery_attempts_delivery_id"),
        },
        "columns": set(),
    },
    "0004": {
        "tables": {"audit_events", "idempotency_records"},
        "indexes": {
            ("audit_events", "ix_audit_events_tenant_id_id"),
            ("audit_events", "ix_audit_events_at"),
            ("idempotency_records", "ix_idempotency_records_created_at"),
        },
        "columns": set(),
    },
    "0005": {"tables": set(), "indexes": set(), "columns": {("idempotency_records", "api_key_id")}},
    "0006": {"tables": set(), "indexes": set(), "columns": set()},  # triggers: see their tests
    "0007": {"tables": set(), "indexes": set(), "columns": set()},
    "0008": {"tables": {"queue_pauses"}, "indexes": set(), "columns": set()},
    "0009": {
        "tables": {"http_target_settings"},
        "indexes": set(),
        "columns": {("jobs", "sealed")},
    },
    "0010": {
        "tables": {"schedules", "schedule_runs"},
        "indexes": {
            ("schedules", "ix_schedules_tenant_id_id"),
            ("schedules", "ix_schedules_due"),
            ("schedule_runs", "ix_schedule_runs_slot"),
            ("jobs", "ix_jobs_tenant_id_schedule_id_id"),
        },
        "columns": {("jobs", "schedule_id")},
    },
    "0011": {
        "tables": {"dispatch_clocks", "dispatch_shares"},
        "indexes": {("jobs", "ix_jobs_ready"), ("jobs", "ix_jobs_in_flight")},
        "columns": {("tenants", "weight")},
    },
    "0012": {
        "tables": {"concurrency_limits", "rate_limits", "rate_key_states"},
        "indexes": {
            ("jobs", "ix_jobs_concurrency_held"),
            ("jobs", "ix_jobs_rate_in_flight"),
            ("rate_key_states", "ix_rate_key_states_next_at"),
        },
        "columns": {("jobs", "concurrency_key"), ("jobs", "rate_key")},
    },
    "0013": {
        "tables": {"tenant_usage"},
        "indexes": set(),
        "columns": {
            ("tenants", "quota_unfinished_jobs"),
            ("tenants", "quota_payload_bytes"),
            ("tenants", "quota_api_keys"),
            ("tenants", "quota_webhook_endpoints"),
        },
    },
}


def revisions() -> list[str]:
    """The chain from base to head, oldest first."""
    script = ScriptDirectory.from_config(alembic_config())
    return [r.revision for r in reversed(list(script.walk_revisions("base", "heads")))]


@pytest.fixture
def fresh_database() -> Iterator[str]:
    """A database created for this test alone, dropped after it (even if the test fails)."""
    with own_database("hopper_migrations") as url:
        yield url


def snapshot(engine: Engine) -> dict[str, Any]:
    """The public schema as the inspector sees it: enough to tell two schemas apart."""
    inspector = inspect(engine)
    tables = {}
    for table in sorted(inspector.get_table_names()):
        tables[table] = {
            "columns": [
                (c["name"], str(c["type"]), c["nullable"]) for c in inspector.get_columns(table)
            ],
            "primary_key": inspector.get_pk_constraint(table)["constrained_columns"],
            "foreign_keys": sorted(
                (
                    tuple(fk["constrained_columns"]),
                    fk["referred_table"],
                    fk["options"].get("ondelete"),
                )
                for fk in inspector.get_foreign_keys(table)
            ),
            "indexes": sorted(
                (i["name"], tuple(i["column_names"]), bool(i["unique"]))
                for i in inspector.get_indexes(table)
            ),
            "checks": sorted(c["sqltext"] for c in inspector.get_check_constraints(table)),
        }
    return {"tables": tables, "sequences": sorted(inspector.get_sequence_names())}


def version(engine: Engine) -> list[str]:
    with engine.connect() as connection:
        return list(connection.execute(text("SELECT version_num FROM alembic_version")).scalars())


def drift(engine: Engine, schema: dict[str, Any]) -> list[Any]:
    """What ``alembic revision --autogenerate`` would write, less what is there by design: the
    model maps no indexes (the migrations create them, each with its reason, and ADDS checks
    them), and a column the model calls unique is served by a unique index."""
    unique_indexes = {
        (table, columns)
        for table, described in schema["tables"].items()
        for _name, columns, unique in described["indexes"]
        if unique
    }
    ours = {name for step in ADDS.values() for _table, name in step["indexes"]}
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        found = compare_metadata(context, Base.metadata)
    left = []
    for difference in found:
        kind = difference[0] if isinstance(difference, tuple) else None
        if kind == "remove_index" and difference[1].name in ours:
            continue
        if kind == "add_constraint" and isinstance(difference[1], UniqueConstraint):
            constraint = difference[1]
            if (constraint.table.name, tuple(constraint.columns.keys())) in unique_indexes:
                continue
        left.append(difference)
    return left


def test_migrations_go_up_down_and_up_again_on_postgres(fresh_database: str) -> None:
    settings = Settings.from_env(services.real_env(DATABASE_URL=fresh_database))
    engine = create_engine(fresh_database)
    chain = revisions()
    assert chain == sorted(ADDS), "a new migration needs its line in ADDS"
    try:
        assert snapshot(engine)["tables"] == {}

        # Up, one revision at a time: each adds what it says, and keeps what came before.
        tables: set[str] = set()
        indexes: set[tuple[str, str]] = set()
        columns: set[tuple[str, str]] = set()
        for revision in chain:
            migrate(settings, revision)
            tables |= ADDS[revision]["tables"]
            indexes |= ADDS[revision]["indexes"]
            columns |= ADDS[revision]["columns"]
            schema = snapshot(engine)["tables"]
            assert set(schema) == tables | {"alembic_version"}, revision
            assert indexes <= {(t, i[0]) for t, s in schema.items() for i in s["indexes"]}
            assert columns <= {(t, c[0]) for t, s in schema.items() for c in s["columns"]}
            assert version(engine) == [revision]
        head = ScriptDirectory.from_config(alembic_config()).get_current_head()
        assert version(engine) == [head] == [chain[-1]]
        first_climb = snapshot(engine)
        assert set(first_climb["tables"]) == set(Base.metadata.tables) | {"alembic_version"}
        migrate(settings)  # at head already: nothing to do, nothing changes
        assert snapshot(engine) == first_climb and version(engine) == [head]

        # Down to base: none of our tables, indexes or sequences remain; no version is recorded.
        downgrade(settings, "base")
        at_base = snapshot(engine)
        assert set(at_base["tables"]) == {"alembic_version"}
        assert at_base["tables"]["alembic_version"]["indexes"] == []
        assert at_base["sequences"] == []
        assert version(engine) == []

        # Up again, in one go: the same schema as the first climb, at head.
        migrate(settings)
        assert snapshot(engine) == first_climb
        assert version(engine) == [head]

        # And the migrations build what the model maps: autogenerate would add nothing.
        assert drift(engine, first_climb) == []
    finally:
        engine.dispose()
