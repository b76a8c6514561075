"""``hopper backup`` and ``hopper restore``: a logical dump of the PostgreSQL database, and its
restore into an empty database, made ready to run on a broker that has never seen it.

The database is the only source of truth (RabbitMQ and Redis hold nothing that cannot be
rebuilt), so one consistent ``pg_dump`` is a whole backup. A restored database arrives without
the messages and the workers it had: ``restore`` hands every queued job and pending delivery back
to the scheduler, and ends every running job's lease, so that the scheduler's first pass
publishes them and takes the running ones back at once, instead of after the republish
threshold or the lease's full length.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from glob import glob
from pathlib import Path

from sqlalchemy import ColumnElement, Connection, Engine, FromClause, func, select, text, update
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError

from domain.db import make_engine
from domain.model import ApiKey, Job
from domain.settings import Settings
from domain.webhooks.model import Delivery

SERVER_BINARIES = "/usr/lib/postgresql/*/bin"

# Anything of a user's in the target (a table, sequence, view, function): a restore over it would
# mix two databases, or fail halfway.
_USER_OBJECTS = text(
    "SELECT (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
    "        WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')"
    "        AND n.nspname NOT LIKE 'pg_toast%' AND n.nspname NOT LIKE 'pg_temp%')"
    " + (SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace"
    "    WHERE n.nspname NOT IN ('pg_catalog', 'information_schema'))"
)


class Refused(Exception):
    """The command cannot do what was asked; one line says why, and nothing was written."""


class Failed(Exception):
    """A PostgreSQL tool failed; its own messages are already on stderr."""


@dataclass(frozen=True)
class Restored:
    jobs: dict[str, int]
    keys: int
    usable_keys: int
    deliveries_pending: int

    def __str__(self) -> str:
        jobs = ", ".join(f"{count} {status}" for status, count in sorted(self.jobs.items()))
        keys = f"{self.keys} ({self.usable_keys} usable)"
        return (
            f"jobs: {jobs or 'none'}; keys: {keys}; deliveries pending: {self.deliveries_pending}"
        )


def run_backup(settings: Settings, target: Path) -> int:
    return _reporting("backup", lambda: _report(target, backup(settings, target)))


def run_restore(settings: Settings, source: Path) -> int:
    return _reporting("restore", lambda: f"restored {source}; {restore(settings, source)}")


def backup(settings: Settings, target: Path) -> float:
    """Dump the database to ``target`` (custom format); returns the seconds it took. The dump is
    written beside it and renamed when whole, so a file at ``target`` is never half a backup."""
    _require_postgres(settings)
    pg_dump = pg_tool("pg_dump")
    partial = target.with_name(target.name + ".partial")
    started = time.monotonic()
    previous = os.umask(0o077)  # the dump holds every payload and result: its owner's alone
    try:
        _run([pg_dump, "--format=custom", f"--file={partial}"], settings.database_url)
    except Failed:  # a half-written dump must not be taken for a backup
        partial.unlink(missing_ok=True)
        raise
    finally:
        os.umask(previous)
    partial.replace(target)
    return time.monotonic() - started


def restore(settings: Settings, source: Path) -> Restored:
    """Restore ``source`` into the empty database of DATABASE_URL, all or nothing, then repair."""
    _require_postgres(settings)
    pg_restore = pg_tool("pg_restore")
    if not source.is_file():
        raise Refused(f"{source}: no such file")
    engine = make_engine(settings, pool_size=1)
    try:
        _require_empty(engine)
        flags = ["--no-owner", "--no-privileges", "--exit-on-error", "--single-transaction"]
        _run([pg_restore, *flags], settings.database_url, (str(source),))
        return _repaired(engine)
    finally:
        engine.dispose()


def pg_tool(name: str) -> str:
    """The newest installed server version's ``name``, else the one on PATH: pg_dump refuses a
    server newer than itself, and the one on PATH may be an older version's."""
    installed = [Path(d) / name for d in glob(SERVER_BINARIES) if (Path(d) / name).is_file()]
    if installed:
        return str(max(installed, key=_major_version))
    found = shutil.which(name)
    if found is None:
        raise Refused(f"{name} is not installed (install the PostgreSQL client tools)")
    return found


def libpq_target(database_url: str) -> tuple[str, dict[str, str]]:
    """The SQLAlchemy URL as a libpq URL without its password, and the password as PGPASSWORD:
    a password on a command line is visible to every user of the machine."""
    url = make_url(database_url)
    password = {"PGPASSWORD": str(url.password)} if url.password is not None else {}
    libpq = URL.create(
        "postgresql", url.username, None, url.host, url.port, url.database, url.query
    )
    return libpq.render_as_string(hide_password=False), password


def _repaired(engine: Engine) -> Restored:
    try:
        with engine.begin() as connection:
            _repair(connection)
            return _count(connection)
    except DBAPIError as exc:  # not a dump of Hopper's, or of a release without these columns
        reason = f"{type(exc.orig).__name__}: {str(exc.orig).strip().splitlines()[0]}"
        raise Failed(f"restored, but not repaired ({reason}): is it a dump of Hopper's?") from exc


def _repair(connection: Connection) -> None:
    """What a new broker and new workers need: no queued job or pending delivery counts as
    published (their messages were in the old broker), and no running job's worker is alive."""
    jobs, deliveries = Job.__table__, Delivery.__table__
    # One pass over every queued job may outlast the production statement_timeout (30 s).
    connection.execute(text("SET LOCAL statement_timeout = 0"))
    connection.execute(update(jobs).where(jobs.c.status == "queued").values(published_at=None))
    connection.execute(
        update(jobs).where(jobs.c.status == "running").values(lease_expires_at=func.now())
    )
    connection.execute(
        update(deliveries)
        .where(deliveries.c.status == "pending")
        .values(published_at=None, in_flight_until=None, claim_token=None)
    )


def _count(connection: Connection) -> Restored:
    jobs, keys, deliveries = Job.__table__, ApiKey.__table__, Delivery.__table__
    by_status = connection.execute(select(jobs.c.status, func.count()).group_by(jobs.c.status))
    usable = keys.c.revoked_at.is_(None) & (
        keys.c.expires_at.is_(None) | (keys.c.expires_at > func.now())
    )
    return Restored(
        jobs={status: count for status, count in by_status},
        keys=_how_many(connection, keys),
        usable_keys=_how_many(connection, keys, usable),
        deliveries_pending=_how_many(connection, deliveries, deliveries.c.status == "pending"),
    )


def _how_many(connection: Connection, table: FromClause, *where: ColumnElement[bool]) -> int:
    return connection.scalar(select(func.count()).select_from(table).where(*where)) or 0


def _require_postgres(settings: Settings) -> None:
    if not settings.is_postgres:
        raise Refused(
            "DATABASE_URL is not PostgreSQL: for the embedded SQLite database, stop Hopper and "
            f"copy {make_url(settings.database_url).database} (and any -wal file beside it)"
        )


def _require_empty(engine: Engine) -> None:
    with engine.connect() as connection:
        if connection.scalar(_USER_OBJECTS):
            database = engine.url.database
            raise Refused(f"database {database} is not empty: restore into a new, empty database")


def _run(argv: list[str], database_url: str, files: tuple[str, ...] = ()) -> None:
    """``argv`` (the tool and its options), then the database, then ``files`` after ``--``
    (a file named like an option is a file). Never a password prompt: a cron job or a
    Kubernetes Job would wait on it forever."""
    libpq, password = libpq_target(database_url)
    command = [*argv, "--no-password", f"--dbname={libpq}", *(("--", *files) if files else ())]
    done = subprocess.run(command, env={**os.environ, **password})  # noqa: S603 - our own tool
    if done.returncode != 0:
        raise Failed(f"{Path(argv[0]).name} failed (exit {done.returncode}): nothing was written")


def _major_version(binary: Path) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", binary.parent.parent.name))


def _report(target: Path, seconds: float) -> str:
    size = target.stat().st_size
    shown = f"{size / 2**20:.1f} MiB" if size >= 2**20 else f"{size / 2**10:.1f} KiB"
    return f"wrote {target} ({shown}) in {seconds:.1f} s"


def _reporting(command: str, work: Callable[[], str]) -> int:
    """Exit 2 on a refusal, 1 on a failure, each with one line; else the summary and 0."""
    try:
        summary = work()
    except Refused as exc:
        print(f"hopper {command}: refused: {exc}", file=sys.stderr)
        return 2
    except Failed as exc:
        print(f"hopper {command}: {exc}", file=sys.stderr)
        return 1
    print(f"hopper {command}: {summary}", file=sys.stderr)
    return 0
