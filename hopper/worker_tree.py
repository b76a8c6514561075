"""``hopper worker`` with no ``-Q``: every queue, as one command and one process tree.

The job queues run in a prefork pool and ``webhooks`` in a thread pool, each a Celery worker of
its own, started by this small parent. The parent passes on the signals it gets (SIGTERM: both
pools finish what they run, then stop) and stops the other pool when one ends. Each pool is told
by the kernel to die with the parent, so a parent killed outright (SIGKILL, the OOM killer) leaves
no pool running jobs that nobody watches; Celery does the same for its own pool processes.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Sequence
from types import FrameType

import structlog

log = structlog.get_logger(__name__)

FORWARDED_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT)
_PR_SET_PDEATHSIG = 1


class WorkerTree:
    """Runs one ``hopper worker -Q …`` child per pool and waits for them all."""

    def __init__(
        self, pools: Sequence[Sequence[str]], started: Callable[[], None] = lambda: None
    ) -> None:
        """``started`` runs once every pool is started (it may start threads: the pools are
        forked before it, and fork with a thread running is not safe with ``preexec_fn``)."""
        self._pools = [list(argv) for argv in pools]
        self._started = started
        self._children: dict[int, subprocess.Popen[bytes]] = {}  # reaped here, not by Popen
        self._stopping = False

    def run(self) -> int:
        for signum in FORWARDED_SIGNALS:
            signal.signal(signum, self._forward)
        parent = os.getpid()
        for argv in self._pools:
            child = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
                [sys.executable, "-m", "hopper.cli", "worker", *argv],
                preexec_fn=lambda: _die_with(parent),  # this parent starts no threads
                # Its own group: a terminal's Ctrl-C reaches it once, through this parent.
                process_group=0,
                # This parent serves the tree's metrics; the pools only write theirs.
                env={k: v for k, v in os.environ.items() if k != "HOPPER_METRICS_PORT"},
            )
            self._children[child.pid] = child
            log.info("worker_pool_started", pid=child.pid, args=" ".join(argv))
        self._started()
        return self._wait_all()

    def _wait_all(self) -> int:
        status = 0
        while self._children:
            pid, code = self._reap()
            self._children.pop(pid, None)
            status = status or code
            if not self._stopping:
                log.warning("worker_pool_exited", pid=pid, exit_code=code)
                status = status or 1
                self._signal_children(signal.SIGTERM)
        return status

    def _reap(self) -> tuple[int, int]:
        try:
            pid, wait_status = os.wait()
        except ChildProcessError:  # none left to wait for
            self._children.clear()
            return 0, 0
        code = os.waitstatus_to_exitcode(wait_status)
        return pid, code if code >= 0 else 128 - code  # killed by a signal: as a shell says

    def _forward(self, signum: int, _frame: FrameType | None) -> None:
        self._signal_children(signum)

    def _signal_children(self, signum: int) -> None:
        self._stopping = True
        for pid in self._children:
            with contextlib.suppress(ProcessLookupError):  # exited: os.wait() has it
                os.kill(pid, signum)


def _die_with(parent: int) -> None:
    """In the child, before it runs: the kernel sends SIGKILL when the parent dies."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the parent died before the request took effect
        os._exit(1)
