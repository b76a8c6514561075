"""A steady rate of submissions from a few threads (a Python client is enough at 100 a second),
and what the database says of the jobs afterwards."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from sqlalchemy import text
from sqlalchemy.engine import Engine


def paced(
    send: Callable[[], str], per_second: float, seconds: float, threads: int = 8
) -> list[str]:
    """Calls `send` `per_second` times a second for `seconds`, each call at its own slot of the
    schedule (a slow answer does not delay the next slot while a thread is free); the ids sent."""
    total = round(per_second * seconds)
    start = time.monotonic() + 0.2
    ids: list[str] = []
    lock = threading.Lock()
    slots = iter(range(total))

    def loop() -> None:
        while True:
            with lock:
                slot = next(slots, None)
            if slot is None:
                return
            time.sleep(max(0.0, start + slot / per_second - time.monotonic()))
            sent = send()
            with lock:
                ids.append(sent)

    workers = [threading.Thread(target=loop) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return ids


def created_to_finished_ms(db: Engine, ids: list[str]) -> list[float]:
    """Each job's span from its creation to its end, on the database's clock."""
    with db.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT extract(epoch FROM finished_at - created_at) * 1000 FROM jobs "
                "WHERE id = ANY(:ids) AND status = 'succeeded'"
            ),
            {"ids": ids},
        ).scalars()
        return [float(value) for value in rows]


def finished(db: Engine, ids: list[str]) -> int:
    with db.connect() as connection:
        return int(
            connection.execute(
                text("SELECT count(*) FROM jobs WHERE id = ANY(:ids) AND finished_at IS NOT NULL"),
                {"ids": ids},
            ).scalar_one()
        )
