"""Loaded by every Python process of a stack whose PYTHONPATH starts with this folder (and
BENCH_COUNTS_DIR is set): counts, on the client side, what each process asks of PostgreSQL, and
writes the running totals to BENCH_COUNTS_DIR/<pid>.json five times a second.

- statements: every statement SQLAlchemy sends (an executemany counts once);
- transactions: every COMMIT and ROLLBACK (psycopg sends a BEGIN before each one's first
  statement, so a transaction costs two round trips besides its statements);
- pings: every pool pre-ping (a round trip before a checkout).

Round trips = statements + 2 x transactions + pings. Nothing of this is in the product.
"""

from __future__ import annotations

import json
import os
import threading
import time
from typing import Any

_DIR = os.environ.get("BENCH_COUNTS_DIR")


class _Counts:
    def __init__(self) -> None:
        self.values = {"statements": 0, "transactions": 0, "pings": 0}
        self.lock = threading.Lock()

    def bump(self, name: str) -> None:
        with self.lock:
            self.values[name] += 1

    def restart(self) -> None:
        """In a forked child: its own lock (the parent's may have been held), from zero."""
        self.lock = threading.Lock()
        self.values = dict.fromkeys(self.values, 0)

    def write_forever(self) -> None:
        path = os.path.join(_DIR or ".", f"{os.getpid()}.json")
        while True:
            time.sleep(0.2)
            with self.lock:
                snapshot = dict(self.values)
            with open(path + ".tmp", "w") as out:
                json.dump(snapshot, out)
            os.replace(path + ".tmp", path)


def _install() -> None:
    from sqlalchemy import event
    from sqlalchemy.engine import Engine
    from sqlalchemy.engine.default import DefaultDialect

    counts = _Counts()
    event.listen(Engine, "before_cursor_execute", lambda *_a, **_k: counts.bump("statements"))
    event.listen(Engine, "commit", lambda *_a, **_k: counts.bump("transactions"))
    event.listen(Engine, "rollback", lambda *_a, **_k: counts.bump("transactions"))

    ping = DefaultDialect._do_ping_w_event

    def counted_ping(self: Any, dbapi_connection: Any) -> bool:
        counts.bump("pings")
        return bool(ping(self, dbapi_connection))

    DefaultDialect._do_ping_w_event = counted_ping  # type: ignore[method-assign]

    def start() -> None:
        threading.Thread(target=counts.write_forever, daemon=True, name="bench-counts").start()

    def child() -> None:
        counts.restart()
        start()

    os.register_at_fork(after_in_child=child)
    start()


if _DIR:
    _install()
