"""Load from wrk (a C load generator, so the client costs little of the two cores): one run of
one request at a fixed number of connections, read back as a `Load`."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

SCRIPT = Path(__file__).with_name("wrk") / "request.lua"


@dataclass(frozen=True)
class Load:
    requests: int
    seconds: float
    failed: int  # connection errors and answers of 400 or above
    p50_ms: float
    p90_ms: float
    p95_ms: float
    p99_ms: float

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds


def wrk_path() -> str:
    found = shutil.which("wrk")
    if found is None:
        raise SystemExit(
            "bench: wrk is not installed (make bench installs it: apt-get install wrk)"
        )
    return found


def run_wrk(
    url: str,
    *,
    method: str = "GET",
    body: str | None = None,
    key: str | None = None,
    idempotent_every: int = 0,
    connections: int = 32,
    seconds: float = 10.0,
    threads: int = 2,
) -> Load:
    assert url.startswith("http://127.0.0.1:"), url  # nothing leaves the machine
    base, path = _split(url)
    env = {
        **os.environ,
        "BENCH_METHOD": method,
        "BENCH_PATH": path,
        "BENCH_IDEMPOTENT_EVERY": str(idempotent_every),
        "BENCH_RUN": uuid.uuid4().hex[:12],
    }
    if body is not None:
        env["BENCH_BODY"] = body
    if key is not None:
        env["BENCH_KEY"] = key
    done = subprocess.run(
        [
            wrk_path(),
            f"-t{threads}",
            f"-c{connections}",
            f"-d{max(1, round(seconds))}s",
            "--latency",
            "--timeout",
            "30s",  # wrk's own default (2 s) would count a slow batch as an error
            "-s",
            str(SCRIPT),
            base,
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        check=True,
    )
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    return Load(
        requests=figures["requests"],
        seconds=figures["duration_us"] / 1e6,
        failed=figures["errors"] + figures["non_2xx_3xx"],
        p50_ms=figures["p50_us"] / 1000,
        p90_ms=figures["p90_us"] / 1000,
        p95_ms=figures["p95_us"] / 1000,
        p99_ms=figures["p99_us"] / 1000,
    )


def _split(url: str) -> tuple[str, str]:
    """`http://host:port/path?query` -> (`http://host:port`, `/path?query`)."""
    scheme, _, rest = url.partition("://")
    host, _, path = rest.partition("/")
    return f"{scheme}://{host}", f"/{path}"
