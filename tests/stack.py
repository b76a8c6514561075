"""Real processes for end-to-end and fault tests: gunicorn, celery workers and the scheduler,
started through the `hopper` command exactly as the Procfile starts them, spoken to over HTTP."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import requests

from tests.factories import make_tenant, tenant_roles
from tests.services import ROOT

if TYPE_CHECKING:
    from hopper.bootstrap import Container

HOPPER = str(Path(sys.executable).parent / "hopper")


def run_hopper(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``hopper ARGS`` on the real services (``env`` on top), to its end; never raises."""
    from tests.services import real_env

    return subprocess.run(
        [HOPPER, *args],
        cwd=ROOT,
        env={**os.environ, **real_env(), **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@contextlib.contextmanager
def full_stack(env: dict[str, str], log_dir: Path) -> Iterator[Stack]:
    """gunicorn, a worker and the scheduler, stopped at the end."""
    running = Stack(env, log_dir)
    try:
        running.web()
        running.worker()
        running.scheduler()
        yield running
    finally:
        running.stop()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class Process:
    def __init__(self, name: str, argv: list[str], env: dict[str, str], log_dir: Path) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self._log = self.log_path.open("ab")
        self.popen = subprocess.Popen(
            argv,
            cwd=ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self, timeout: float = 20.0) -> None:
        self.terminate()
        self.finish(time.monotonic() + timeout)

    def terminate(self) -> None:
        """SIGTERM, the signal a process manager stops it with."""
        if self.alive():
            self.popen.send_signal(signal.SIGTERM)

    def finish(self, deadline: float) -> None:
        """Waits for it to exit until ``deadline`` (monotonic), then kills what is left."""
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(max(0.0, deadline - time.monotonic()))
        self.kill_group()
        self._log.close()

    def kill_group(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        self.popen.wait(5)

    def output(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")


class Stack:
    """A running Hopper: start what a test needs, and everything stops at the end."""

    def __init__(self, env: dict[str, str], log_dir: Path) -> None:
        self.port = free_port()
        self.log_dir = log_dir
        self.env = {**os.environ, **env, "PORT": str(self.port), "HOST": "127.0.0.1"}
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.processes: list[Process] = []
        self.http = requests.Session()
        self._wiring: Container | None = None

    def start(self, name: str, *args: str, env: dict[str, str] | None = None) -> Process:
        process = Process(
            f"{name}-{len(self.processes)}",
            [HOPPER, *args],
            {**self.env, **(env or {})},
            self.log_dir,
        )
        self.processes.append(process)
        return process

    def web(self, env: dict[str, str] | None = None) -> Process:
        process = self.start("web", "serve", env=env)
        wait_until(lambda: self._ready(), 30, "the API to answer /readyz", process)
        return process

    def worker(
        self,
        queues: str = "default,long",
        concurrency: int | None = 2,
        env: dict[str, str] | None = None,
    ) -> Process:
        """A worker for ``queues``; ``concurrency`` None is the pool's own default."""
        sized = ["-c", str(concurrency)] if concurrency is not None else []
        return self.start("worker", "worker", "-Q", queues, *sized, env=env)

    def scheduler(self, env: dict[str, str] | None = None) -> Process:
        return self.start("scheduler", "scheduler", env=env)

    def cli(self, *args: str) -> str:
        done = subprocess.run(
            [HOPPER, *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if done.returncode != 0:
            raise AssertionError(f"hopper {' '.join(args)} failed: {done.stderr}")
        return done.stdout

    def new_tenant(self) -> dict[str, str]:
        """A tenant and one key per role, made in-process on the stack's database: a `hopper`
        subprocess a key took two seconds under coverage, and the CLI's `tenants create` and
        `keys create` have tests of their own (tests/integration/test_cli_and_config.py)."""
        if self._wiring is None:
            from domain.settings import Settings
            from hopper.bootstrap import bootstrap

            self._wiring = bootstrap(Settings.from_env(self.env), pool_size=1)
        return tenant_roles(make_tenant(self._wiring.access))

    def request(
        self, method: str, path: str, key: str | None = None, **kwargs: Any
    ) -> requests.Response:
        headers = dict(kwargs.pop("headers", {}))
        if key:
            headers["Authorization"] = f"Bearer {key}"
        return self.http.request(
            method, self.base_url + path, headers=headers, timeout=40, **kwargs
        )

    def wait_for_job(self, job_id: str, key: str, timeout: float = 60) -> dict[str, Any]:
        """Poll until the job is finished; returns it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            job = self.request("GET", f"/v1/jobs/{job_id}", key).json()
            if job["status"] in ("succeeded", "failed", "canceled"):
                return job
            time.sleep(0.1)
        raise AssertionError(f"job {job_id} did not finish in {timeout}s: {job}\n{self.logs()}")

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.output()[-4000:]}" for p in self.processes)

    def stop(self, timeout: float = 20.0) -> None:
        stop_all(list(reversed(self.processes)), timeout)
        self.http.close()
        if self._wiring is not None:
            self._wiring.engine.dispose()

    def _ready(self) -> bool:
        try:
            return self.http.get(self.base_url + "/readyz", timeout=2).status_code == 200
        except requests.RequestException:
            return False


def stop_all(processes: list[Process], timeout: float = 20.0) -> None:
    """Stops every process at once: each gets SIGTERM, then all share one deadline."""
    for process in processes:
        process.terminate()
    deadline = time.monotonic() + timeout
    for process in processes:
        process.finish(deadline)


def wait_until(
    check: Callable[[], bool], timeout: float, what: str, process: Process | None = None
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        if process is not None and not process.alive():
            raise AssertionError(
                f"{process.name} exited while waiting for {what}:\n{process.output()}"
            )
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")
