"""Where the time goes under load: py-spy samples Hopper's processes while the bench drives one
hot path, and the busiest functions are printed (inclusive share of the samples), with the
folded stacks kept for a flame graph.

    .venv/bin/python -m bench.profile submit     # the web processes under POST /v1/jobs
    .venv/bin/python -m bench.profile batch      # ... under POST /v1/jobs/batch
    .venv/bin/python -m bench.profile get        # ... under GET /v1/jobs/{id}
    .venv/bin/python -m bench.profile drain      # the job pool's processes draining echo jobs
    .venv/bin/python -m bench.profile dispatch   # the scheduler (its dispatcher) meanwhile

Run it with the bench's environment (`make profile WHAT=submit` sets it).
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from collections import Counter
from pathlib import Path

from bench import scenarios
from bench.load import run_wrk
from bench.stacks import fresh_database, hopper, purge
from domain import queues
from tests.stack import Process, Stack

OUT = Path("var/profiles")


def record(pid: int, seconds: int, out: Path, gil: bool = False) -> subprocess.Popen[bytes]:
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    return subprocess.Popen(
        [
            spy,
            "record",
            "--pid",
            str(pid),
            "--subprocesses",
            "--duration",
            str(seconds),
            "--rate",
            "200",
            "--format",
            "raw",
            "--output",
            str(out),
            "--nonblocking",
            *(["--gil"] if gil else []),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def busiest(folded: Path, top: int = 30) -> list[tuple[float, str]]:
    """Each function's share of the samples whose stack holds it (once a stack)."""
    inclusive: Counter[str] = Counter()
    total = 0
    for line in folded.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue  # py-spy's own notes
        samples = int(count)
        total += samples
        for frame in set(stack.split(";")):
            inclusive[frame] += samples
    return [(100 * n / total, frame) for frame, n in inclusive.most_common(top)] if total else []


def profile_web(
    stack: Stack, web: Process, key: str, what: str, seconds: int, out: Path, gil: bool
) -> None:
    url, body, connections = f"{stack.base_url}/v1/jobs", json.dumps(scenarios.ECHO), 32
    if what == "get":
        job = stack.request("POST", "/v1/jobs", key, json=scenarios.ECHO).json()["id"]
        url, body = f"{stack.base_url}/v1/jobs/{job}", None
    if what == "batch":
        url, connections = f"{stack.base_url}/v1/jobs/batch", 4
        body = json.dumps({"jobs": [scenarios.ECHO] * scenarios.BATCH_SIZE})
    spy = record(web.pid, seconds, out, gil)
    method, every = ("POST", 2) if what == "submit" else ("POST" if body else "GET", 0)
    run_wrk(
        url,
        method=method,
        body=body,
        key=key,
        idempotent_every=every,
        connections=connections,
        seconds=seconds + 2,
    )
    spy.wait()


def profile_drain(
    stack: Stack, scheduler: Process, key: str, seconds: int, out: Path, gil: bool, what: str
) -> None:
    """10,000 jobs committed (the broker holds a window of them); then a pool drains them,
    and py-spy samples it (``drain``) or the scheduler, whose dispatcher refills the window
    (``dispatch``)."""
    for _ in range(20):
        body = {"jobs": [scenarios.ECHO] * scenarios.BATCH_SIZE}
        answer = stack.request("POST", "/v1/jobs/batch", key, json=body)
        assert answer.ok, answer.text
    worker = stack.worker(queues.DEFAULT, concurrency=2)
    threading.Event().wait(3)  # the pool is up
    record(scheduler.pid if what == "dispatch" else worker.pid, seconds, out, gil).wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile")
    parser.add_argument("what", choices=["submit", "batch", "get", "drain", "dispatch"])
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument(
        "--gil", action="store_true", help="only samples that hold the GIL: CPU spent in Python"
    )
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop what was started
    OUT.mkdir(parents=True, exist_ok=True)
    out = OUT / f"{args.what}.folded"
    db = fresh_database()
    with tempfile.TemporaryDirectory(prefix="hopper-profile-") as logs:
        stack = hopper(Path(logs))
        try:
            web = stack.web()
            scheduler = stack.scheduler()
            key = stack.new_tenant()["submitter"]
            purge(queues.DEFAULT)
            if args.what in ("drain", "dispatch"):
                profile_drain(stack, scheduler, key, args.seconds, out, args.gil, args.what)
            else:
                profile_web(stack, web, key, args.what, args.seconds, out, args.gil)
        finally:
            stack.stop()
            db.dispose()
    print(f"folded stacks in {out} (flamegraph.pl or speedscope.app draw them)\n")
    for share, frame in busiest(out):
        print(f"{share:5.1f}%  {frame}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
