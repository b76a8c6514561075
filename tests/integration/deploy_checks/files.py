"""The files the deploy checks read, parsed once and handed out as fresh copies, so that a test
may break its own copy."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[3]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DEPLOY = ROOT / "deploy"
KUBERNETES = DEPLOY / "kubernetes"
DASHBOARD = DEPLOY / "grafana" / "hopper.json"
ALERTS = DEPLOY / "prometheus" / "alerts.yml"
RUNBOOK_FILES = (ROOT / "README.md",)
TEST_KEYS = "eVElifrZZxG6FzhyHge64BouF0CklwOENwwD9c8ONiw="  # a Fernet key for these checks only
LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

Deploy = dict[str, Any]


def _manifests() -> list[dict[str, Any]]:
    manifests = []
    for path in sorted(KUBERNETES.rglob("*.yaml")):
        name = str(path.relative_to(ROOT))
        for document in yaml.load_all(path.read_text(), Loader=LOADER):
            assert isinstance(document, dict), f"{name}: a document that is not an object"
            manifests.append(document | {"_file": name})
    assert manifests, f"no manifest under {KUBERNETES.relative_to(ROOT)}"
    return manifests


def _runbook() -> str:
    texts = [path.read_text() for path in RUNBOOK_FILES if path.exists()]
    assert texts, f"none of {[str(path.relative_to(ROOT)) for path in RUNBOOK_FILES]} exists"
    return "\n".join(texts)


@cache
def _parsed() -> str:
    """The files, parsed, kept as JSON (they are JSON data): decoding it is a fresh copy, at
    half the cost of a deepcopy."""
    parsed = {
        "manifests": _manifests(),
        "dashboard": json.loads(DASHBOARD.read_text()),
        "alerts": yaml.load(ALERTS.read_text(), Loader=LOADER),
        "runbook": _runbook(),
    }
    text = json.dumps(parsed)
    assert json.loads(text) == parsed, "deploy/ holds data JSON cannot carry"
    return text


def deploy_files() -> Deploy:
    """Everything under deploy/ that the checks read, parsed: a fresh copy each time."""
    return json.loads(_parsed())


@cache
def compose_file() -> dict[str, Any]:
    """docker-compose.yml as written (not as docker-compose resolves it): its images' names."""
    return yaml.load(COMPOSE_FILE.read_text(), Loader=LOADER)
