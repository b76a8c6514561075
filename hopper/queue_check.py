"""``hopper queues check``: do the worker commands of a Procfile and a compose file serve every
queue there is (the built-in ones and each job type's, plugins' included), and no other?

A plugin type on a queue of its own is only run once some worker listens to that queue; this says
so before the first job of it waits forever. A plain ``hopper worker`` (no ``-Q``) serves every
queue.
"""

from __future__ import annotations

import itertools
import shlex
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import yaml

from domain.settings import ConfigError


def worker_commands(path: Path) -> Iterator[tuple[str, list[str]]]:
    """(name, argv after ``hopper``) of each process a Procfile or a compose file runs."""
    text = path.read_text()
    if path.suffix in (".yml", ".yaml"):
        yield from _compose_commands(text, path)
    else:
        yield from _procfile_commands(text, path)


def _procfile_commands(text: str, path: Path) -> Iterator[tuple[str, list[str]]]:
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        name, sep, command = line.partition(":")
        if not sep:
            raise ConfigError(str(path), f"line {number} is not `name: command`")
        argv = shlex.split(command)
        if argv[:1] == ["hopper"]:
            yield name.strip(), argv[1:]


def _compose_commands(text: str, path: Path) -> Iterator[tuple[str, list[str]]]:
    try:
        services = (yaml.safe_load(text) or {}).get("services") or {}
    except (yaml.YAMLError, AttributeError) as exc:
        raise ConfigError(str(path), f"not a compose file: {type(exc).__name__}") from None
    for name, service in services.items():
        command: Any = (service or {}).get("command") or []
        yield name, shlex.split(command) if isinstance(command, str) else list(command)


def served_queues(argv: Sequence[str], every_queue: Sequence[str]) -> list[str] | None:
    """The queues a ``hopper worker`` command listens to; None when it is no worker."""
    if argv[:1] != ["worker"]:
        return None
    for flag, value in itertools.pairwise(argv):
        if flag in ("-Q", "--queues"):
            return [name.strip() for name in value.split(",") if name.strip()]
    return list(every_queue)


def problems(paths: Sequence[Path], every_queue: Sequence[str]) -> list[str]:
    """What is wrong, a line each: a queue nobody serves, a worker told to serve no queue."""
    served: set[str] = set()
    found: list[str] = []
    for path in paths:
        for name, argv in worker_commands(path):
            queues = served_queues(argv, every_queue)
            if queues is None:
                continue
            unknown = sorted(set(queues) - set(every_queue))
            if unknown:
                found.append(f"{path} {name}: listens to unknown queues {', '.join(unknown)}")
            served.update(queues)
        for queue in sorted(set(every_queue) - served):
            found.append(f"{path}: no worker listens to the queue {queue}")
        served.clear()
    return found
