"""The operator's command line and configuration, run as an operator runs them."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect

from api.app import create_app
from domain.settings import Settings
from hopper.bootstrap import bootstrap
from hopper.migrate import downgrade, migrate
from tests.factories import unique
from tests.services import real_env
from tests.stack import run_hopper

hopper = run_hopper


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("PORT", "eighty"),
        ("DATABASE_URL", "mysql://nope"),
        ("HOPPER_LEASE_SECONDS", "0"),
        ("HOPPER_RATE_LIMIT_DEFAULT", "lots"),
        ("HOPPER_OUTBOUND_ALLOWED_NETWORKS", "127.0.0.0/33"),
    ],
)
def test_bad_configuration_stops_the_process_with_one_line(variable: str, value: str) -> None:
    done = hopper("serve", **{variable: value})
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert variable in lines[0]
    assert "Traceback" not in done.stderr


def test_tenants_and_keys_print_only_what_they_create(migrated_database: str) -> None:
    name = unique("cli")
    created = hopper("tenants", "create", name)
    assert created.returncode == 0, created.stderr
    tenant_id = created.stdout.strip()
    assert tenant_id.startswith("ten_") and created.stdout == tenant_id + "\n"
    for tenant in (tenant_id, name):
        key = hopper("keys", "create", "--tenant", tenant, "--role", "reader", "--name", "ci")
        assert key.returncode == 0, key.stderr
        assert key.stdout.startswith("hop_") and len(key.stdout.strip().splitlines()) == 1
        assert key.stdout.strip() not in key.stderr
    assert hopper("tenants", "create", name).returncode == 1  # the name is taken
    missing = hopper("keys", "create", "--tenant", "nobody", "--role", "admin", "--name", "x")
    assert missing.returncode == 1 and "nobody" in missing.stderr


def test_migrations_go_down_and_up_again_on_sqlite(tmp_path: Path) -> None:
    settings = Settings.from_env({"HOPPER_VAR_DIR": str(tmp_path)})

    def schema() -> tuple[set[str], set[str]]:
        engine = create_engine(settings.database_url)
        inspector = inspect(engine)
        tables = set(inspector.get_table_names())
        indexes = {i["name"] for i in inspector.get_indexes("jobs")} if "jobs" in tables else set()
        engine.dispose()
        return tables, indexes

    migrate(settings)
    migrate(settings)
    tables, _ = schema()
    assert {"tenants", "api_keys", "jobs", "job_attempts"} <= tables
    downgrade(settings, "base")
    assert schema()[0] <= {"alembic_version"}
    migrate(settings)
    assert {"ix_jobs_tenant_id_id", "ix_jobs_due", "ix_jobs_lease"} <= schema()[1]


def test_a_database_outage_is_503_not_500() -> None:
    dead = Settings.from_env(
        real_env(DATABASE_URL="postgresql+psycopg://postgres@127.0.0.1:1/none")
    )
    app = create_app(bootstrap(dead))
    client = app.test_client()
    key = "hop_" + "a" * 40
    response = client.get("/v1/jobs", headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 503
    assert response.mimetype == "application/problem+json"
    assert "psycopg" not in response.text and "Traceback" not in response.text
    ready = client.get("/readyz")
    assert ready.status_code == 503
    assert client.get("/healthz").status_code == 200
