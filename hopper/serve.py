"""``hopper serve``: the API under gunicorn, threaded workers so long-polls do not block others,
each with a front door that reads requests whole before a thread serves them, so that slow
clients do not either (``hopper.gunicorn_worker``).

gunicorn's own lines go through the root logger that ``configure_logging`` set up, so they come
out as JSON (and redacted) like every other line. No answer carries a ``Server`` header.
"""

from __future__ import annotations

from typing import Any

from gunicorn.app.base import BaseApplication
from gunicorn.glogging import Logger

from domain.settings import Settings


class RootLogger(Logger):  # type: ignore[misc]
    """gunicorn's error and access logs without handlers of their own: their records propagate
    to the root logger and its one handler."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        for log in (self.error_log, self.access_log):
            for handler in list(log.handlers):
                log.removeHandler(handler)
            log.propagate = True


class _Gunicorn(BaseApplication):  # type: ignore[misc]
    def __init__(self, settings: Settings) -> None:
        self.settings = settings  # the workers' front door reads the body limits from it
        super().__init__()

    def load_config(self) -> None:
        s = self.settings
        options = {
            # With HOPPER_METRICS_PORT, a second listener, on which the app serves /metrics alone.
            "bind": [f"{s.host}:{port}" for port in (s.port, s.metrics_port) if port],
            "workers": s.web_processes,
            "worker_class": "hopper.gunicorn_worker.ProblemWorker",
            "threads": s.web_threads,
            "timeout": 60,
            "graceful_timeout": 20,
            "keepalive": 5,
            "accesslog": None,  # the app logs one http_request line per request
            "logger_class": RootLogger,
            "loglevel": "warning",
            "proc_name": "hopper-web",
            # No client's X-Forwarded-* is believed here; behind HOPPER_TRUSTED_PROXY_HOPS
            # proxies the app reads them (ProxyFix), counting hops.
            "forwarded_allow_ips": "",
        }
        for key, value in options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        # Runs in each gunicorn worker after the fork: engines and connections are its own.
        from api.app import create_app
        from hopper.bootstrap import bootstrap
        from hopper.logging import configure_logging

        configure_logging(self.settings, "web")
        container = bootstrap(self.settings, pool_size=self.settings.web_threads)
        container.listen()
        container.relay()
        return create_app(container)


def serve(settings: Settings) -> None:
    _Gunicorn(settings).run()
