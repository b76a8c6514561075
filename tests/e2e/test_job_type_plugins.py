"""A team's own job types, as a team would add them: the example package in examples/ installed
beside Hopper (never into its tree or its venv), the stack restarted, the type listed and run by
a plain `hopper worker`; and a broken plugin stopping each process kind at start."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

from domain.job_types import registry_for
from tests.services import ROOT, real_env
from tests.stack import HOPPER, Stack

pytestmark = pytest.mark.e2e

PIP_INSTALL = (sys.executable, "-m", "pip", "install", "--quiet", "--no-build-isolation")
PIP_INSTALL += ("--no-index", "--no-deps")
EXAMPLE = ROOT / "examples" / "hopper-reports"
TABLE = "city,population,area\nLyon,522250,47.87\nNantes,320732,65.19\nBrest,,49.51\n"


def tree_state() -> str:
    return subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=all", "--ignored=no"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def install_example(tmp_path: Path) -> Path:
    """pip's own install, offline, into a folder of its own; the source is copied first, since
    a build writes beside the source it builds."""
    source = tmp_path / "source"
    subprocess.run(["cp", "-r", str(EXAMPLE), str(source)], check=True)
    target = tmp_path / "site"
    subprocess.run(
        [*PIP_INSTALL, "--target", str(target), str(source)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    return target


def job_type_names(stack: Stack, key: str) -> dict[str, dict]:
    listing = stack.request("GET", "/v1/job-types", key)
    assert listing.status_code == 200, listing.text
    return {entry["name"]: entry for entry in listing.json()["data"]}


def test_the_example_package_installed_beside_hopper_runs_on_a_plain_worker(
    migrated_database: str, tmp_path: Path
) -> None:
    before = tree_state()
    stack = Stack({**real_env(), "HOPPER_OUTBOUND_ALLOWED_NETWORKS": "127.0.0.0/8"}, tmp_path)
    assert "csv_summary" not in registry_for(None)  # Hopper alone does not know the type
    try:
        plugged = {"PYTHONPATH": str(install_example(tmp_path))}
        stack.web(env=plugged)
        keys = stack.new_tenant()
        stack.start("worker", "worker", "-c", "1", env=plugged)  # no -Q: every queue
        stack.scheduler(env=plugged)

        listed = job_type_names(stack, keys["reader"])["csv_summary"]
        assert listed["queue"] == "reports"
        assert set(listed["payload_schema"]["properties"]) == {"csv", "delimiter", "columns"}
        submitted = stack.request(
            "POST",
            "/v1/jobs",
            keys["submitter"],
            json={"type": "csv_summary", "payload": {"csv": TABLE}},
        )
        assert submitted.status_code == 202, submitted.text
        job = stack.wait_for_job(submitted.json()["id"], keys["reader"], timeout=60)
    finally:
        stack.stop()
    assert job["status"] == "succeeded", job
    assert job["result"]["rows"] == 3
    assert job["result"]["columns"]["population"] == {
        "values": 2,
        "empty": 1,
        "numeric": True,
        "min": 320732.0,
        "max": 522250.0,
        "sum": 842982.0,
        "mean": 421491.0,
    }
    assert job["result"]["columns"]["city"]["numeric"] is False
    assert tree_state() == before, "the install wrote into Hopper's tree"
    assert importlib.util.find_spec("hopper_reports") is None, "the install reached Hopper's venv"


# Each process kind loads the plugins at start: each refuses a broken one with one line.
BROKEN = [
    ("serve", "tests.plugin_samples:CLASH", "job type 'echo' is declared already"),
    ("worker", "tests.plugin_samples:SCHEMA_THAT_DOES_NOT_BUILD", "BrokenSchema does not build"),
    ("scheduler", "tests.plugin_samples.broken:TYPES", "cannot be loaded: ModuleNotFoundError"),
]


def test_a_broken_plugin_stops_each_process_kind_with_one_line_and_exit_code_2(
    tmp_path: Path,
) -> None:
    base = {**os.environ, **real_env(), "PYTHONPATH": str(ROOT), "HOPPER_VAR_DIR": str(tmp_path)}
    started = [
        (
            kind,
            target,
            expected,
            subprocess.Popen(
                [HOPPER, kind],
                cwd=ROOT,
                env={**base, "HOPPER_JOB_TYPES": target},
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            ),
        )
        for kind, target, expected in BROKEN
    ]
    for kind, target, expected, process in started:
        stdout, stderr = process.communicate(timeout=60)
        assert process.returncode == 2, (kind, stdout, stderr)
        lines = stderr.splitlines()
        assert len(lines) == 1, (kind, stderr)
        assert lines[0].startswith(f"hopper: configuration error: HOPPER_JOB_TYPES {target}: ")
        assert expected in lines[0], (kind, lines[0])
