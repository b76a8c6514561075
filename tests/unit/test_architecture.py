"""The doors between the packages open one way: api → domain ← workers. The domain imports no web
framework, task queue or HTTP client; api and workers do not import each other (api may use the
workers' publisher only). No shipped package imports the tests: test doubles live under tests/."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

FORBIDDEN = {
    "domain": {
        "flask",
        "flask_smorest",
        "celery",
        "kombu",
        "requests",
        "httpx",
        "urllib3",
        "api",
        "workers",
        "hopper",
        "gunicorn",
        "redis",
        "tests",
    },
    "api": {
        "workers.tasks",
        "workers.runner",
        "workers.scheduler",
        "celery",
        "kombu",
        "hopper",
        "tests",
    },
    "workers": {"api", "flask", "flask_smorest", "hopper", "tests"},
    "hopper": {"tests"},
    "migrations": {"tests"},
}


def imports_of(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def violations(package: str) -> list[str]:
    found = []
    for path in sorted((ROOT / package).rglob("*.py")):
        for name in imports_of(path):
            for banned in FORBIDDEN[package]:
                if name == banned or name.startswith(banned + "."):
                    found.append(f"{path.relative_to(ROOT)} imports {name}")
    return found


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_imports_go_one_way(package: str) -> None:
    assert violations(package) == []


def test_the_check_itself_sees_imports(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("import flask\nfrom celery import Celery\nfrom . import sibling\n")
    assert imports_of(sample) == {"flask", "celery"}
