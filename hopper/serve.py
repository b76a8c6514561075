"""``hopper serve``: the API under gunicorn, threaded workers so slow clients and long-polls do
not block others."""

from __future__ import annotations

from typing import Any

from gunicorn.app.base import BaseApplication

from domain.settings import Settings


class _Gunicorn(BaseApplication):  # type: ignore[misc]
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        super().__init__()

    def load_config(self) -> None:
        s = self._settings
        options = {
            "bind": f"{s.host}:{s.port}",
            "workers": s.web_processes,
            "worker_class": "gthread",
            "threads": s.web_threads,
            "timeout": 60,
            "graceful_timeout": 20,
            "keepalive": 5,
            "accesslog": None,
            "errorlog": "-",
            "loglevel": "warning",
            "proc_name": "hopper-web",
        }
        for key, value in options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        # Runs in each gunicorn worker after the fork: engines and connections are its own.
        from api.app import create_app
        from hopper.bootstrap import bootstrap
        from hopper.logging import configure_logging

        configure_logging(self._settings, "web")
        return create_app(bootstrap(self._settings, pool_size=self._settings.web_threads))


def serve(settings: Settings) -> None:
    _Gunicorn(settings).run()
