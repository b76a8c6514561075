"""Breaking a copy of the deploy folder, to show that a check can fail: each case names the
change, makes it, and gives a piece of the message the check must fail with, so that it fails
for the reason the case is about."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, NamedTuple

import pytest

from tests.integration.deploy_checks.files import Deploy, deploy_files
from tests.integration.deploy_checks.manifests import named

Where = tuple[str, str] | str  # a (kind, name) of the manifests, or a key of Deploy
Mutation = Callable[[Deploy], None]
Check = Callable[[Deploy], None]
POD = "spec.template.spec"
CONTAINER = f"{POD}.containers.0"  # a Deployment's (first) container
WEB, WORKER = ("Deployment", "hopper-web"), ("Deployment", "hopper-worker")
SCHEDULER, WEBHOOKS = ("Deployment", "hopper-scheduler"), ("Deployment", "hopper-worker-webhooks")


class Breakage(NamedTuple):
    name: str
    mutate: Mutation
    check: Check
    says: str  # a piece of the check's failure message


def _changed(old: Any, value: Any) -> Any:
    new = value(old) if callable(value) else value
    assert new != old, f"the breakage changes nothing: {old!r} already"
    return new


def _parent(deploy: Deploy, where: Where, path: list[str]) -> Any:
    node = named(deploy, *where) if isinstance(where, tuple) else deploy[where]
    for key in path:
        node = node[int(key)] if isinstance(node, list) else node[key]
    return node


def put(where: Where, path: str, value: Any) -> Mutation:
    """Set what ``path`` (keys and list indexes, dotted; empty: ``where`` itself) names to
    ``value``, or to ``value(old)`` if it is a function; an index one past a list's end
    appends."""

    def mutate(deploy: Deploy) -> None:
        if not path:
            assert isinstance(where, str), where
            deploy[where] = _changed(deploy[where], value)
            return
        *parents, last = path.split(".")
        node = _parent(deploy, where, parents)
        key: Any = int(last) if isinstance(node, list) else last
        old = node.get(key) if isinstance(node, dict) else [*node, None][key]
        if isinstance(node, list) and key == len(node):
            node.append(_changed(old, value))
        else:
            node[key] = _changed(old, value)

    return mutate


def replace(old: str, new: str) -> Callable[[str], str]:
    def replaced(text: str) -> str:
        assert old in text, f"the breakage finds no {old!r} to replace"
        return text.replace(old, new)

    return replaced


def adding(manifest: dict[str, Any]) -> Mutation:
    return put("manifests", "", lambda manifests: [*manifests, manifest])


def without_kind(kind: str) -> Mutation:
    return put("manifests", "", lambda manifests: [m for m in manifests if m["kind"] != kind])


def without(key: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    return lambda mapping: {k: v for k, v in mapping.items() if k != key}


def cases(breakages: list[Breakage]) -> list[Any]:
    return [pytest.param(breakage, id=breakage.name) for breakage in breakages]


def assert_check_catches(breakage: Breakage) -> None:
    """The check passes on the real files and fails, saying why, on the broken copy."""
    deploy = deploy_files()
    breakage.check(deploy)
    breakage.mutate(deploy)
    with pytest.raises((AssertionError, pytest.fail.Exception), match=re.escape(breakage.says)):
        breakage.check(deploy)
