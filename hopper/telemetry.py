"""Metrics for every process kind: where each process writes its figures, and who serves them.

Every process of a tree (gunicorn's workers, a prefork pool's processes, the two pools of
``hopper worker``) writes its figures to files in one folder (prometheus-client's multiprocess
mode); the process that serves ``/metrics`` sums them. prometheus-client chooses how to keep
values when it is first imported, so ``prepare`` runs before anything imports it. The folder
belongs to the process that made it and goes when it exits; a child inherits it.

The web tier serves ``/metrics`` on its own port (or on ``HOPPER_METRICS_PORT``: gunicorn listens
there too, and the app serves only ``/metrics`` on it); workers and the scheduler serve it on
``HOPPER_METRICS_PORT`` from a small thread of their top process.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import structlog

from domain.auth import bearer_matches
from domain.settings import ConfigError, Settings

log = structlog.get_logger(__name__)

FOLDER_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
_PREFIX = "hopper-metrics-"


def prepare(kind: str) -> None:
    """Give this process tree a folder for its figures, unless a parent gave one already.
    Folders left by trees that were killed outright (their owner is gone) are swept first."""
    if os.environ.get(FOLDER_VARIABLE):
        return
    _sweep()
    owner = os.getpid()
    folder = tempfile.mkdtemp(prefix=f"{_PREFIX}{owner}-{kind}-")
    os.environ[FOLDER_VARIABLE] = folder
    atexit.register(release)


def release() -> None:
    """Remove this tree's folder; only its owner does (a forked child runs atexit too). Call
    it before ``os._exit``, which runs no atexit handler."""
    folder = os.environ.get(FOLDER_VARIABLE, "")
    if Path(folder).name.startswith(f"{_PREFIX}{os.getpid()}-"):
        shutil.rmtree(folder, ignore_errors=True)


def _sweep() -> None:
    for folder in Path(tempfile.gettempdir()).glob(f"{_PREFIX}*"):
        owner = folder.name[len(_PREFIX) :].split("-", 1)[0]
        # Our own pid on a folder we have not made yet: a container restarted with the same pid
        if owner.isdigit() and (int(owner) == os.getpid() or not _alive(int(owner))):
            shutil.rmtree(folder, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def registry() -> Any:
    """A registry over every process's figures (or this process's alone, outside a tree)."""
    from prometheus_client import REGISTRY, CollectorRegistry, multiprocess

    folder = os.environ.get(FOLDER_VARIABLE)
    if not folder:
        return REGISTRY
    summed = CollectorRegistry()
    multiprocess.MultiProcessCollector(summed, path=folder)
    return summed


def exposed_metric_names() -> dict[str, set[str]]:
    """Per process kind, the names of the samples its ``/metrics`` can show, as Prometheus
    writes them (counters end in ``_total``; a histogram has ``_bucket``, ``_sum``, ``_count``)."""
    from api.meta.instruments import INSTRUMENTS
    from api.meta.metrics import DATABASE_FAMILIES, REPLICA_FAMILIES
    from workers.instruments import SCHEDULER_INSTRUMENTS, WORKER_INSTRUMENTS

    def described(instruments: Iterable[Any]) -> list[tuple[str, str]]:
        return [(f.name, f.type) for i in instruments for f in i.describe()]

    kinds = {
        "web": [*described(INSTRUMENTS), *DATABASE_FAMILIES, *REPLICA_FAMILIES],
        "worker": described(WORKER_INSTRUMENTS),
        "scheduler": described(SCHEDULER_INSTRUMENTS),
    }
    return {
        kind: {n for family in families for n in _samples(*family)}
        for kind, families in kinds.items()
    }


def _samples(name: str, kind: str) -> list[str]:
    if kind == "counter":
        return [f"{name}_total"]
    if kind == "histogram":
        return [f"{name}_{suffix}" for suffix in ("bucket", "sum", "count")]
    return [name]


def serve(settings: Settings, collectors: Callable[[], Any] = registry) -> None:
    """Serve ``/metrics`` on ``HOPPER_METRICS_PORT`` from a daemon thread, if it is set."""
    if settings.metrics_port is None:
        return
    app = _metrics_app(settings, collectors)
    try:
        server = make_server(
            settings.host,
            settings.metrics_port,
            app,
            server_class=_ThreadingServer,
            handler_class=_QuietHandler,
        )
    except OSError as exc:
        raise ConfigError("HOPPER_METRICS_PORT", f"cannot listen on it: {exc.strerror}") from None
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    log.info("metrics_serving", port=settings.metrics_port)


def _metrics_app(settings: Settings, collectors: Callable[[], Any]) -> Callable[..., Any]:
    from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        if environ.get("PATH_INFO") != "/metrics":
            return _answer(start_response, "404 Not Found", b"not found\n")
        token, header = settings.metrics_token, environ.get("HTTP_AUTHORIZATION")
        if token is not None and not bearer_matches(header, token):
            return _answer(start_response, "401 Unauthorized", b"a bearer token is needed\n")
        return _answer(start_response, "200 OK", generate_latest(collectors()), CONTENT_TYPE_LATEST)

    return app


def _answer(
    start_response: Callable[..., Any], status: str, body: bytes, content_type: str = "text/plain"
) -> list[bytes]:
    start_response(status, [("Content-Type", content_type), ("Content-Length", str(len(body)))])
    return [body]


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    timeout = 10  # seconds a connection may take to send its request: idle ones hold no thread

    def log_message(self, format: str, *args: Any) -> None:
        return None
