"""What one job costs PostgreSQL, all of Hopper's processes together: statements and round
trips (counted on the client side by bench/instrument/sitecustomize.py) and WAL bytes (from
`pg_current_wal_lsn()` before and after), per job submitted over HTTP and run to its end."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import Engine

from bench.paced import finished, paced
from bench.scenarios import ECHO
from tests.stack import Stack, wait_until

INSTRUMENT = Path(__file__).with_name("instrument")


@dataclass(frozen=True)
class Cost:
    jobs: int
    statements: float
    round_trips: float
    wal_bytes: float


def instrumented_env(counts: Path) -> dict[str, str]:
    root = Path(__file__).resolve().parent.parent
    return {"PYTHONPATH": f"{INSTRUMENT}:{root}", "BENCH_COUNTS_DIR": str(counts)}


def totals(counts: Path) -> dict[str, int]:
    summed = {"statements": 0, "transactions": 0, "pings": 0}
    for path in counts.glob("*.json"):
        for name, value in json.loads(path.read_text()).items():
            summed[name] += value
    return summed


def wal_lsn(db: Engine) -> str:
    with db.connect() as connection:
        return str(connection.execute(text("SELECT pg_current_wal_lsn()")).scalar_one())


def wal_bytes(db: Engine, since: str) -> int:
    with db.connect() as connection:
        return int(
            connection.execute(
                text("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), :since)"), {"since": since}
            ).scalar_one()
        )


def per_job(stack: Stack, key: str, db: Engine, counts: Path, jobs: int) -> Cost:
    """`jobs` echo jobs at 100 a second on a stack started with `instrumented_env(counts)`."""
    time.sleep(1)  # every process has written its first totals
    before, lsn = totals(counts), wal_lsn(db)

    def send() -> str:
        answer = stack.request("POST", "/v1/jobs", key, json=ECHO)
        assert answer.status_code == 202, answer.text
        return str(answer.json()["id"])

    ids = paced(send, 100, jobs / 100)
    wait_until(lambda: finished(db, ids) == len(ids), 120, "the measured jobs to end")
    written = wal_bytes(db, lsn)
    time.sleep(1)  # the last totals are on disk
    after = totals(counts)
    spent = {name: after[name] - before[name] for name in after}
    trips = spent["statements"] + 2 * spent["transactions"] + spent["pings"]
    return Cost(len(ids), spent["statements"] / len(ids), trips / len(ids), written / len(ids))
