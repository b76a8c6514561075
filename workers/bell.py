"""The dispatch bell: after a commit that made jobs ready, or freed a place in a queue's window,
the dispatchers hear of it on ``hopper_dispatch`` (``workers.dispatcher``).

The ``NOTIFY`` goes in a transaction of its own that writes nothing: a notifying commit holds
PostgreSQL's notification lock until it ends, and this one ends without a flush to disk, so the
commits that rang (a burst of submissions, a pool's claims) never queue behind each other's.
"""

from __future__ import annotations

from collections.abc import Sequence

import structlog
from sqlalchemy import Engine, text

from domain.ports import Command, Dispatch, DispatchBell, Publisher

log = structlog.get_logger(__name__)

CHANNEL = "hopper_dispatch"

_RING = text("SELECT pg_notify(:channel, queue) FROM unnest(CAST(:queues AS text[])) queue")


class PostgresBell:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def ring(self, queues: Sequence[str]) -> None:
        try:
            with self._engine.connect() as connection:
                connection.execute(_RING, {"channel": CHANNEL, "queues": list(queues)})
                connection.commit()
        except Exception as exc:  # the dispatchers' periodic pass still comes
            log.warning("dispatch_bell_failed", queues=list(queues), error=str(exc))


class SilentBell:
    """Where there is nothing to notify (SQLite): the dispatcher looks often instead."""

    def ring(self, queues: Sequence[str]) -> None:
        return None


class Ringing:
    """A ``Publisher`` that rings the bell for ``Dispatch`` commands and hands the rest on."""

    def __init__(self, publisher: Publisher, bell: DispatchBell) -> None:
        self._publisher = publisher
        self._bell = bell

    def publish(self, commands: list[Command]) -> None:
        queues = sorted({c.queue for c in commands if isinstance(c, Dispatch)})
        if queues:
            self._bell.ring(queues)
        rest = [c for c in commands if not isinstance(c, Dispatch)]
        if rest:
            self._publisher.publish(rest)
