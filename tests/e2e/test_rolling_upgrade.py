"""A rolling upgrade, mid-roll: the previous release's worker runs jobs on the new schema.

An upgrade migrates first and then replaces the processes a few at a time, so for a while the
workers of the previous release serve a database already at the new head, beside the new API and
the new scheduler. This module builds that moment on the real services. The previous release is
the code as it was just before the newest migration was added (found in git at run time, so the
test follows each new migration); it is exported from git into a directory of its own and its
worker runs there, on this virtualenv's Python, importing its own packages, not this tree's. The
database is at this tree's head (the session's ``migrated_database``), the API and the scheduler
are this tree's code. The old worker must take jobs of the built-in types to the right ends and
record their attempts: that is what "each migration works with the code of the release before
it" means for a worker.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, text

from hopper.migrate import alembic_config
from tests.factories import TenantKeys
from tests.services import DATABASE_URL, ROOT, real_env
from tests.stack import Process, Stack

IMPORTS_MARK = "rolling-upgrade-imports:"
# `python -m hopper.cli worker …`, once the process has put this tree's editable install out of
# reach (so that no module the old tree lacks can quietly come from here) and has said where its
# packages come from.
BOOT = (
    "import runpy, sys\n"
    "sys.meta_path[:] = [f for f in sys.meta_path if '__editable__' not in f.__module__]\n"
    "import domain, hopper, workers\n"
    f"print({IMPORTS_MARK!r}, *(m.__file__ for m in (domain, hopper, workers)), flush=True)\n"
    "runpy.run_module('hopper.cli', run_name='__main__', alter_sys=True)\n"
)
WORKER_ARGS = ("worker", "-Q", "default,long", "-c", "2")
STOP_SECONDS = 2.0


@dataclass(frozen=True)
class Release:
    commit: str
    why: str
    tree: Path


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, timeout=30, check=False
    )
    if done.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed in {repo}: {done.stderr.strip()}")
    return done.stdout


def previous_release_commit(repo: Path, migration: Path) -> tuple[str, str]:
    """The commit whose tree is the release before ``migration``, and how it was chosen. With no
    git history this fails: the test must never pass for want of a release to compare with."""
    if not (repo / ".git").exists():
        raise AssertionError(
            f"{repo} has no .git: the rolling-upgrade test needs the history to find the "
            "previous release (run it in a clone, not an exported tree)"
        )
    if git(repo, "rev-parse", "--is-shallow-repository").strip() == "true":
        raise AssertionError(
            f"{repo} is a shallow clone: the rolling-upgrade test needs the commit before the "
            "newest migration (clone with the whole history, e.g. fetch-depth: 0)"
        )
    path = migration.relative_to(repo).as_posix()
    added = git(repo, "log", "--diff-filter=A", "--format=%H", "-1", "--", path).strip()
    if not added:
        # Not committed yet: the working tree is the new release and HEAD the one before it.
        return git(repo, "rev-parse", "--verify", "HEAD^{commit}").strip(), f"HEAD ({path} is new)"
    parent = git(repo, "rev-parse", "--verify", f"{added}^1^{{commit}}").strip()
    return parent, f"the parent of {added[:12]}, which added {path}"


def export(repo: Path, commit: str, into: Path) -> None:
    """``git archive | tar -x``: the commit's files alone, with no worktree registered."""
    archive = subprocess.Popen(
        ["git", "-C", str(repo), "archive", "--format=tar", commit], stdout=subprocess.PIPE
    )
    assert archive.stdout is not None
    with archive.stdout:
        subprocess.run(["tar", "-x", "-C", str(into)], stdin=archive.stdout, timeout=60, check=True)
    assert archive.wait(60) == 0, f"git archive {commit} failed"


def head_migration() -> tuple[str, Path]:
    script = ScriptDirectory.from_config(alembic_config())
    head = script.get_current_head()
    assert head is not None
    revision = script.get_revision(head)
    assert revision is not None and revision.path
    return head, Path(revision.path).resolve()


class OldWorker(Process):
    """The previous release's ``hopper worker``: this virtualenv's Python, the old tree's code
    (its directory is the working directory and the whole of PYTHONPATH, ahead of the editable
    install of this tree, which Python consults last)."""

    def __init__(self, tree: Path, env: dict[str, str], log_dir: Path) -> None:
        self.name = "old-worker"
        self.log_path = log_dir / f"{self.name}.log"
        self._log = self.log_path.open("ab")
        self.popen = subprocess.Popen(
            [sys.executable, "-c", BOOT, *WORKER_ARGS],
            cwd=tree,
            env=old_env(tree, env),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def imported_from(self) -> list[Path]:
        for line in self.output().splitlines():
            if line.startswith(IMPORTS_MARK):
                return [Path(name).resolve() for name in line.split()[1:]]
        raise AssertionError(f"the old worker did not say where it imports from:\n{self.output()}")

    def pool_pids(self) -> set[int]:
        """The pids of its pool's processes (its children): the ones that run the jobs."""
        children = set()
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue  # gone meanwhile
            if int(fields[1]) == self.pid:
                children.add(int(stat.parent.name))
        return children


def old_env(tree: Path, env: dict[str, str]) -> dict[str, str]:
    """The stack's environment, importing from ``tree``. Coverage is left out: it measures this
    tree's packages by name and would record the old tree's files, gone when it reports."""
    unwanted = ("COVERAGE_PROCESS_START", "COVERAGE_PROCESS_CONFIG", "PYTHONSAFEPATH")
    return {
        **{k: v for k, v in env.items() if k not in unwanted},
        "PYTHONPATH": str(tree),
    }


@pytest.fixture(scope="module")
def previous(tmp_path_factory: pytest.TempPathFactory) -> Release:
    _head, migration = head_migration()
    commit, why = previous_release_commit(ROOT, migration)
    tree = tmp_path_factory.mktemp("previous-release")
    export(ROOT, commit, tree)
    return Release(commit, why, tree)


@pytest.fixture(scope="module")
def rolling(
    migrated_database: str, previous: Release, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Stack, OldWorker]]:
    """The new API and scheduler, and the previous release's worker, on the new schema. One web
    process is enough here and boots faster beside the others on a small machine."""
    stack = Stack(real_env(HOPPER_WEB_PROCESSES="1"), tmp_path_factory.mktemp("rolling-stack"))
    try:
        old = OldWorker(previous.tree, stack.env, stack.log_dir)  # the slowest to start: first
        stack.processes.append(old)
        stack.scheduler()
        stack.web()
        yield stack, old
    finally:
        # Nothing is running by then, and graceful stops have tests of their own: what has not
        # stopped within STOP_SECONDS of its SIGTERM is killed, to keep the module fast.
        stack.stop(timeout=STOP_SECONDS)


def submit(stack: Stack, key: str, body: dict) -> dict:
    response = stack.request("POST", "/v1/jobs", key, json=body)
    assert response.status_code == 202, response.text
    return response.json()


def attempts(stack: Stack, key: str, job_id: str) -> list[dict]:
    response = stack.request("GET", f"/v1/jobs/{job_id}/attempts", key)
    assert response.status_code == 200, response.text
    return response.json()["data"]


def test_the_previous_release_is_older_than_the_schema(previous: Release) -> None:
    head, migration = head_migration()
    relative = migration.relative_to(ROOT)
    assert not (previous.tree / relative).exists(), previous.why
    script = ScriptDirectory.from_config(alembic_config())
    before = script.get_revision(head).down_revision  # type: ignore[union-attr]
    if isinstance(before, str):  # the old tree stops at the revision the newest one follows
        assert [p.name for p in (previous.tree / relative.parent).glob(f"{before}_*.py")]
    assert (previous.tree / "hopper" / "cli.py").exists()


def test_the_old_worker_runs_jobs_on_the_new_schema(
    rolling: tuple[Stack, OldWorker], previous: Release, tenant: TenantKeys
) -> None:
    stack, old = rolling
    key = tenant.submitter
    echo = submit(stack, key, {"type": "echo", "payload": {"message": "from the new API"}})
    nap = submit(stack, key, {"type": "sleep", "payload": {"seconds": 0.1}})  # the long queue
    flaky = submit(stack, key, {"type": "fail", "payload": {"message": "once", "times": 1}})
    doomed = submit(
        stack, key, {"type": "fail", "payload": {"message": "never"}, "max_attempts": 2}
    )
    later = submit(
        stack, key, {"type": "echo", "payload": {"message": "x"}, "run_at": "2099-01-01T00:00:00Z"}
    )
    canceled = stack.request("POST", f"/v1/jobs/{later['id']}/cancel", key)
    assert canceled.status_code == 200 and canceled.json()["status"] == "canceled"

    # It is the old tree's code that runs, and the database is at the new head.
    for module in old.imported_from():
        assert module.is_relative_to(previous.tree.resolve()), (module, previous)
    head, _ = head_migration()
    engine = create_engine(DATABASE_URL)
    with engine.connect() as connection:
        assert connection.execute(text("SELECT version_num FROM alembic_version")).all() == [
            (head,)
        ]
    engine.dispose()

    done = stack.wait_for_job(echo["id"], key, timeout=8)
    assert (done["status"], done["result"], done["attempts"]) == (
        "succeeded",
        {"message": "from the new API"},
        1,
    )
    done = stack.wait_for_job(nap["id"], key, timeout=8)
    assert done["status"] == "succeeded" and done["attempts"] == 1
    done = stack.wait_for_job(flaky["id"], key, timeout=8)
    assert (done["status"], done["result"], done["attempts"]) == ("succeeded", {"attempt": 2}, 2)
    done = stack.wait_for_job(doomed["id"], key, timeout=8)
    assert done["status"] == "failed" and done["attempts"] == 2
    assert done["error"] == {"type": "handler_error", "message": "never"}

    ran = {job["id"]: attempts(stack, key, job["id"]) for job in (echo, nap, flaky, doomed)}
    assert [(a["number"], a["status"]) for a in ran[echo["id"]]] == [(1, "succeeded")]
    assert [(a["number"], a["status"]) for a in ran[flaky["id"]]] == [
        (1, "failed"),
        (2, "succeeded"),
    ]
    assert [(a["number"], a["status"]) for a in ran[doomed["id"]]] == [(1, "failed"), (2, "failed")]
    assert ran[doomed["id"]][0]["error"] == {"type": "handler_error", "message": "never"}
    # Every attempt was made by a process of the old worker's pool ("host:pid").
    pool = old.pool_pids()
    for runs in ran.values():
        for run in runs:
            assert int(run["worker"].rsplit(":", 1)[1]) in pool, (run, pool, stack.logs())
            assert run["started_at"] and run["finished_at"]

    # The canceled job stayed canceled and never ran; the old worker is still up.
    job = stack.request("GET", f"/v1/jobs/{later['id']}", key).json()
    assert job["status"] == "canceled" and attempts(stack, key, later["id"]) == []
    assert old.alive(), old.output()


def test_the_previous_release_is_found_in_history(tmp_path: Path) -> None:
    """How the previous release is chosen, on a repository of the test's own."""
    repo = tmp_path / "repo"
    versions = repo / "migrations" / "versions"
    versions.mkdir(parents=True)
    with pytest.raises(AssertionError, match=r"no \.git"):
        previous_release_commit(repo, versions / "0001_a.py")
    git(repo, "init", "-q")

    def commit(name: str) -> str:
        (versions / name).write_text('"""A revision."""\n')
        git(repo, "add", ".")
        git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", name)
        return git(repo, "rev-parse", "HEAD").strip()

    first = commit("0001_a.py")
    second = commit("0002_b.py")
    assert previous_release_commit(repo, versions / "0002_b.py")[0] == first
    (versions / "0003_c.py").write_text('"""Not committed yet."""\n')
    assert previous_release_commit(repo, versions / "0003_c.py")[0] == second
    with pytest.raises(AssertionError, match="failed"):  # added by the first commit: no parent
        previous_release_commit(repo, versions / "0001_a.py")
