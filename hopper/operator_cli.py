"""Operators' commands: ``hopper queues`` (every tenant's queues and the live workers), pausing
and resuming a queue for every tenant, and bulk retry or cancel of a tenant's jobs."""

from __future__ import annotations

import argparse
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from domain.errors import FieldError, ValidationFailed
from domain.queues import WAITING_REASONS
from domain.services.bulk import ACTIONS
from domain.settings import ConfigError, Settings

INSPECT_TIMEOUT_SECONDS = 1.0
DEPLOY_FILES = (Path("Procfile"), Path("docker-compose.yml"))


def add_commands(commands: Any) -> None:
    queues = commands.add_parser(
        "queues",
        help="every tenant's queues, and the live workers (pause|resume NAME: for every tenant)",
    )
    queues.set_defaults(run=_show_queues)
    actions = queues.add_subparsers(dest="action")
    for action in ("pause", "resume"):
        change = actions.add_parser(action, help=f"{action} a queue for every tenant")
        change.add_argument("name")
        change.set_defaults(run=_change_queue)
    check = actions.add_parser(
        "check", help="do a Procfile's and a compose file's workers serve every queue?"
    )
    check.add_argument(
        "files",
        nargs="*",
        type=Path,
        help="Procfiles and compose files (default: ./Procfile and ./docker-compose.yml)",
    )
    check.set_defaults(run=_check_queues)

    jobs = commands.add_parser("jobs", help="bulk action on a tenant's jobs").add_subparsers(
        dest="action", required=True
    )
    for action, statuses in ACTIONS.items():
        bulk = jobs.add_parser(action, help=f"{action} a tenant's {' or '.join(statuses)} jobs")
        bulk.add_argument("--tenant", required=True, help="tenant id or name")
        bulk.add_argument("--status", required=True, choices=statuses)
        bulk.add_argument("--type", dest="job_type", help="only jobs of this type")
        bulk.add_argument(
            "--since",
            type=_instant,
            help="ISO 8601 time: jobs finished (retry) or created (cancel) at or after it",
        )
        bulk.set_defaults(run=_bulk)


def _instant(value: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {value!r}") from None
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{value!r} needs a time zone, e.g. +00:00 or Z")
    return moment


def _show_queues(settings: Settings, _args: argparse.Namespace) -> int:
    from hopper.bootstrap import bootstrap

    wiring = bootstrap(settings, pool_size=1)
    paused_for = wiring.queue_control.paused_tenants()
    header = ["queue", *WAITING_REASONS, "running", "oldest_due_s", "paused_for"]
    rows = [
        [
            view.queue,
            *(str(view.waiting.get(reason, 0)) for reason in WAITING_REASONS),
            str(view.running),
            f"{view.oldest_due_seconds:.1f}",
            ",".join(paused_for.get(view.queue, [])) or "-",
        ]
        for view in wiring.queue_control.overview(None)
    ]
    print(_table(header, rows))
    print()
    print(_workers(wiring))
    return 0


def _workers(wiring: Any) -> str:
    """The workers that answer the broker now, with the queues each consumes and the jobs each
    runs (as the database records them)."""
    runs = wiring.queue_control.runs_by_worker()
    answers = _inspect(wiring)
    if answers is None:
        lines = ["workers: the broker cannot tell which are alive; running, by process:"]
    else:
        lines = [f"workers answering the broker: {len(answers)}"]
        lines += [f"  {node}  queues {','.join(queues) or '-'}" for node, queues in answers]
    for worker, jobs in sorted(runs.items()):
        lines.append(f"  {worker}  runs {len(jobs)}: " + ", ".join(jobs))
    if not runs:
        lines.append("  no job is running")
    return "\n".join(lines)


def _inspect(wiring: Any) -> list[tuple[str, list[str]]] | None:
    if wiring.celery is None or not wiring.settings.broker_url.startswith(("amqp", "pyamqp")):
        return None
    try:
        found = wiring.celery.control.inspect(timeout=INSPECT_TIMEOUT_SECONDS).active_queues()
    except Exception:  # the broker is away: say what the database knows
        return None
    return sorted(
        (node, sorted(q["name"] for q in queues)) for node, queues in (found or {}).items()
    )


def _table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(cell) for cell in column) for column in zip(header, *rows, strict=True)]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in [header, *rows]
    )


def _check_queues(settings: Settings, args: argparse.Namespace) -> int:
    from hopper.queue_check import problems
    from workers.celery_app import known_queues

    every_queue = known_queues(settings)
    files = args.files or [p for p in DEPLOY_FILES if p.exists()]
    if not files:
        names = " or ".join(str(path) for path in DEPLOY_FILES)
        raise ConfigError("hopper queues check", f"no {names} here: name the files to check")
    found = problems(files, every_queue)
    for line in found:
        print(f"hopper: {line}", file=sys.stderr)
    if not found:
        names = ", ".join(str(path) for path in files)
        print(f"{names}: every queue is served ({', '.join(every_queue)})", file=sys.stderr)
    return 1 if found else 0


def _change_queue(settings: Settings, args: argparse.Namespace) -> int:
    from hopper.bootstrap import bootstrap

    control = bootstrap(settings, pool_size=1).queue_control
    if args.action == "pause":
        changed = control.pause_everywhere(args.name)
        done = "paused" if changed else "was already paused"
    else:
        changed = control.resume_everywhere(args.name)
        done = "resumed" if changed else "was not paused"
    print(f"{args.name} {done} for every tenant", file=sys.stderr)
    return 0


def _bulk(settings: Settings, args: argparse.Namespace) -> int:
    from hopper.bootstrap import bootstrap

    wiring = bootstrap(settings, pool_size=1)
    tenant = wiring.access.find_tenant(args.tenant)
    if args.job_type is not None and args.job_type not in wiring.registry:
        raise ValidationFailed([FieldError("type", f"no job type {args.job_type!r}")])
    moved, skipped = wiring.bulk.apply(
        args.action, tenant.id, args.status, args.job_type, args.since
    )
    print(
        f"{args.action}: {moved} jobs of {tenant.id}"
        + (f"; {skipped} had moved on and were left" if skipped else ""),
        file=sys.stderr,
    )
    return 0
