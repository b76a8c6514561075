"""`hopper backup` and `hopper restore` refuse what would lose data, run as an operator runs
them; the restore drill (tests/e2e/test_restore_drill.py) shows the whole round trip."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, inspect, text

from domain.auth import Principal
from domain.commands import SubmitJob
from domain.model import Role
from domain.settings import Settings
from hopper import backup
from hopper.bootstrap import Container
from tests.factories import TenantKeys, dispatch_now
from tests.services import DATABASE_URL, TEST_ENCRYPTION_KEY, real_env
from tests.stack import run_hopper

hopper = run_hopper


# Every row of a table as text, in order, hashed.
TABLE_HASH = "SELECT md5(coalesce(string_agg(t::text, ',' ORDER BY t::text), '')) FROM \"{}\" t"


def fingerprint() -> dict[str, str]:
    """Every table's rows, hashed: any change anywhere shows."""
    engine = create_engine(DATABASE_URL)
    try:
        with engine.connect() as connection:
            tables = inspect(connection).get_table_names()
            return {t: connection.scalar(text(TABLE_HASH.format(t))) for t in tables}
    finally:
        engine.dispose()


def test_restore_into_a_database_with_data_refuses_and_changes_nothing(
    container: Container, tenant: TenantKeys, tmp_path: Path
) -> None:
    who = Principal(tenant.tenant_id, "key_test", Role.SUBMITTER)
    container.jobs.submit(who, [SubmitJob(type="echo", payload={"message": "x"})])
    assert dispatch_now(container, "default") >= 1  # in flight: what a restore's repair clears
    dump = tmp_path / "hopper.dump"
    made = hopper("backup", str(dump))
    assert made.returncode == 0, made.stderr
    assert dump.stat().st_size > 0 and "wrote" in made.stderr
    before = fingerprint()

    refused = hopper("restore", str(dump))

    assert refused.returncode == 2, refused.stderr
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1 and "not empty" in lines[0], refused.stderr
    assert fingerprint() == before


def test_backup_of_the_embedded_sqlite_database_refuses_with_one_line(tmp_path: Path) -> None:
    database = tmp_path / "hopper.sqlite3"
    target = tmp_path / "hopper.dump"

    done = hopper("backup", str(target), DATABASE_URL=f"sqlite:///{database}")

    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "not PostgreSQL" in lines[0] and "copy" in lines[0] and str(database) in lines[0]
    assert not target.exists()


def test_restore_of_a_missing_file_refuses(tmp_path: Path) -> None:
    done = hopper("restore", str(tmp_path / "nothing.dump"))
    assert done.returncode == 2 and "no such file" in done.stderr


def test_the_password_travels_in_the_environment_never_on_the_command_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[list[str], dict[str, str]]] = []

    def run(argv: list[str], env: dict[str, str], **_: Any) -> subprocess.CompletedProcess[str]:
        calls.append((argv, env))
        Path(argv[2].removeprefix("--file=")).write_bytes(b"PGDMP")
        return subprocess.CompletedProcess(argv, 0)

    monkeypatch.setattr(backup.subprocess, "run", run)
    url = "postgresql+psycopg://hopper:s%3Acret@db.internal:6432/hopper?sslmode=require"
    settings = Settings.from_env(
        {"DATABASE_URL": url, "HOPPER_ENCRYPTION_KEYS": TEST_ENCRYPTION_KEY}
    )

    backup.backup(settings, tmp_path / "hopper.dump")

    ((argv, env),) = calls
    assert not any("s:cret" in arg or "s%3Acret" in arg for arg in argv), argv
    assert "--dbname=postgresql://hopper@db.internal:6432/hopper?sslmode=require" in argv
    assert env["PGPASSWORD"] == "s:cret"
    assert (tmp_path / "hopper.dump").read_bytes() == b"PGDMP"


def test_the_newest_server_binaries_are_preferred_to_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for version in ("9.6", "15", "13"):
        binary = tmp_path / version / "bin" / "pg_dump"
        binary.parent.mkdir(parents=True)
        binary.touch()
    monkeypatch.setattr(backup, "SERVER_BINARIES", str(tmp_path / "*" / "bin"))
    assert backup.pg_tool("pg_dump") == str(tmp_path / "15" / "bin" / "pg_dump")

    monkeypatch.setattr(backup, "SERVER_BINARIES", str(tmp_path / "none" / "*"))
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(backup.Refused, match="pg_dump is not installed"):
        backup.pg_tool("pg_dump")


def test_a_failed_dump_leaves_no_file_that_looks_like_a_backup(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def run(argv: list[str], **_: Any) -> subprocess.CompletedProcess[str]:
        Path(argv[2].removeprefix("--file=")).write_bytes(b"PGDMP, half")
        return subprocess.CompletedProcess(argv, 1)

    monkeypatch.setattr(backup.subprocess, "run", run)
    settings = Settings.from_env(real_env())

    assert backup.run_backup(settings, tmp_path / "hopper.dump") == 1
    assert list(tmp_path.iterdir()) == []
    assert "pg_dump failed (exit 1)" in capsys.readouterr().err
