"""`hopper`'s command line as hopper itself reads it, and the queues each worker pool serves:
shared by the docker-compose, Procfile and Kubernetes checks."""

from __future__ import annotations

import argparse
import shlex
from functools import cache
from typing import Any

import pytest

from domain.queues import HTTP, JOB_QUEUES, WEBHOOKS
from hopper.cli import _parser as hopper_parser

# Which queues each worker pool listens to, exactly.
POOLS = {"worker": list(JOB_QUEUES), "http": [HTTP], "webhooks": [WEBHOOKS]}


@cache
def _parser() -> argparse.ArgumentParser:
    """hopper's own parser, built once: the checks parse a few hundred command lines."""
    return hopper_parser()


def parse_hopper(argv: list[str]) -> Any:
    """The arguments as `hopper` itself reads them: a command it would reject fails here."""
    try:
        return _parser().parse_args(argv)
    except SystemExit:
        pytest.fail(f"`hopper {shlex.join(argv)}` is not a valid hopper command", pytrace=False)


def queues_of(argv: list[str]) -> list[str]:
    args = parse_hopper(argv)
    assert args.command == "worker", f"not a worker command: {argv}"
    assert args.queues, f"the worker command names no queues with -Q: {argv}"
    return [name.strip() for name in args.queues.split(",")]


def check_worker_queues(argv: list[str], pool: str = "worker") -> None:
    queues = queues_of(argv)
    assert sorted(queues) == sorted(POOLS[pool]), (
        f"the {pool} pool listens to {queues}; domain.queues says {POOLS[pool]}"
    )
