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
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(str(path), f"cannot be read: {type(exc).__name__}") from None
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
        argv = _split(command, path, f"line {number}")
        if argv[:1] == ["hopper"]:
            yield name.strip(), argv[1:]


def _compose_commands(text: str, path: Path) -> Iterator[tuple[str, list[str]]]:
    try:
        services = (yaml.safe_load(text) or {}).get("services") or {}
    except (yaml.YAMLError, AttributeError) as exc:
        raise ConfigError(str(path), f"not a compose file: {type(exc).__name__}") from None
    if not isinstance(services, dict):
        raise ConfigError(str(path), "not a compose file: `services` is not a mapping")
    for name, service in services.items():
        if not isinstance(service, dict | None):
            raise ConfigError(str(path), f"service {name}: not a mapping")
        command: Any = (service or {}).get("command") or []
        if isinstance(command, str):
            yield name, _split(command, path, f"service {name}")
        elif isinstance(command, list):
            yield name, [str(part) for part in command]
        else:
            raise ConfigError(str(path), f"service {name}: `command` is not a string or a list")


def _split(command: str, path: Path, where: str) -> list[str]:
    try:
        return shlex.split(command)
    except ValueError as exc:
        raise ConfigError(str(path), f"{where}: {exc}") from None


def served_queues(argv: Sequence[str], every_queue: Sequence[str]) -> list[str] | None:
    """The queues a ``hopper worker`` command listens to; None when it is no worker."""
    if argv[:1] != ["worker"]:
        return None
    for flag, value in itertools.pairwise([*argv, ""]):
        listed = _queues_option(flag, value)
        if listed is not None:
            return [name.strip() for name in listed.split(",") if name.strip()]
    return list(every_queue)


def _queues_option(flag: str, following: str) -> str | None:
    """The value of a ``-Q``/``--queues`` option, in any of its spellings (``-Q a``, ``-Qa``,
    ``-Q=a``, ``--queues a``, ``--queues=a``); None when ``flag`` is another argument."""
    if flag in ("-Q", "--queues"):
        return following
    for prefix in ("--queues=", "-Q=", "-Q"):
        if flag.startswith(prefix):
            return flag.removeprefix(prefix)
    return None


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
