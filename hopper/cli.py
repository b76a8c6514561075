"""The ``hopper`` command: migrate, the three process kinds, and tenant and key management.

Secrets go to stdout, once; everything else goes to stderr.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from domain.errors import DomainError
from domain.job_types import registry_for
from domain.model import Role
from domain.quotas.model import QUOTAS
from domain.settings import ConfigError, Settings
from hopper import operator_cli, telemetry
from hopper.logging import configure_logging

PROCESS_KINDS = ("serve", "worker", "scheduler")


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        print(f"hopper: configuration error: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings, args.command)
    try:
        if args.command in PROCESS_KINDS:  # a broken plugin stops the process now, not a job
            registry_for(settings.job_types)
        result: int = args.run(settings, args)
        return result
    except ConfigError as exc:
        print(f"hopper: configuration error: {exc}", file=sys.stderr)
        return 2
    except DomainError as exc:
        print(f"hopper: {exc.detail}", file=sys.stderr)
        return 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hopper", description="Hopper job service.")
    commands = parser.add_subparsers(dest="command", required=True)

    commands.add_parser("migrate", help="apply database migrations").set_defaults(run=_migrate)
    commands.add_parser("serve", help="run the HTTP API (gunicorn)").set_defaults(run=_serve)
    worker = commands.add_parser(
        "worker",
        help="run Celery workers",
        description="Without -Q: every queue, as one process tree: the job queues in a prefork "
        "pool of -c processes, http jobs and webhooks each in a pool of 16 threads. With -Q: "
        "those queues in one pool (threads for http or webhooks alone, else -c processes).",
    )
    worker.add_argument("-Q", "--queues", help="comma-separated queues (default: every queue)")
    worker.add_argument(
        "-c",
        "--concurrency",
        type=int,
        help="processes of the job pool (default: the number of cores); with -Q http or -Q "
        "webhooks alone, threads (default 16)",
    )
    worker.set_defaults(run=_worker)
    commands.add_parser("scheduler", help="run the scheduler loop").set_defaults(run=_scheduler)
    commands.add_parser(
        "local-setup", help="create the local tenant and print an admin key (first start only)"
    ).set_defaults(run=_local_setup)

    encryption = commands.add_parser(
        "encryption", help="keys for secrets at rest (HOPPER_ENCRYPTION_KEYS)"
    ).add_subparsers(dest="action", required=True)
    encryption.add_parser("generate-key", help="print a new key").set_defaults(run=_generate_key)
    encryption.add_parser(
        "reencrypt", help="re-encrypt every stored secret under the newest key"
    ).set_defaults(run=_reencrypt)

    tenants = commands.add_parser("tenants", help="manage tenants").add_subparsers(
        dest="action", required=True
    )
    create_tenant = tenants.add_parser("create", help="create a tenant; prints its id")
    create_tenant.add_argument("name")
    create_tenant.set_defaults(run=_create_tenant)
    weight = tenants.add_parser(
        "set-weight",
        help="set a tenant's share of each queue against the others' (default 1)",
        description="Within a queue, tenants are served round-robin by weight: one of weight 3 "
        "starts three jobs for each one of a tenant of weight 1 while both have work waiting.",
    )
    weight.add_argument("tenant", help="tenant id or name")
    weight.add_argument("weight", type=int, help="a whole number from 1 to 1000")
    weight.set_defaults(run=_set_weight)
    quota = tenants.add_parser(
        "set-quota",
        help="set a tenant's own ceilings (each: a whole number, or `default`)",
        description="Past a ceiling, a submission or a creation is a 429 problem "
        "(urn:hopper:problem:quota-exceeded) naming the quota; what is accepted already is "
        "never touched. A quota not named keeps its value; `default` returns it to the "
        "configured default (HOPPER_QUOTA_*).",
    )
    quota.add_argument("tenant", help="tenant id or name")
    for name, what in QUOTAS.items():
        quota.add_argument(f"--{name.replace('_', '-')}", type=_ceiling, help=what)
    quota.set_defaults(run=_set_quota)

    keys = commands.add_parser("keys", help="manage API keys").add_subparsers(
        dest="action", required=True
    )
    create_key = keys.add_parser("create", help="create an API key; prints it once")
    create_key.add_argument("--tenant", required=True, help="tenant id or name")
    create_key.add_argument("--role", required=True, choices=[r.value for r in Role])
    create_key.add_argument("--name", required=True)
    create_key.set_defaults(run=_create_key)

    operator_cli.add_commands(commands)

    backup = commands.add_parser("backup", help="dump the PostgreSQL database to FILE (pg_dump)")
    backup.add_argument("file", type=Path, help="where to write the dump (custom format)")
    backup.set_defaults(run=_backup)
    restore = commands.add_parser(
        "restore",
        help="restore FILE into an empty database and ready it for a new broker (pg_restore)",
    )
    restore.add_argument("file", type=Path, help="a dump made by hopper backup")
    restore.set_defaults(run=_restore)
    return parser


def _migrate(settings: Settings, _args: argparse.Namespace) -> int:
    from hopper.migrate import migrate

    migrate(settings)
    return 0


def _serve(settings: Settings, _args: argparse.Namespace) -> int:
    telemetry.prepare("web")
    from hopper.serve import serve

    serve(settings)
    return 0


def _worker(settings: Settings, args: argparse.Namespace) -> int:
    telemetry.prepare("worker")
    from hopper.worker import run_worker

    return run_worker(settings, args.queues, args.concurrency)


def _scheduler(settings: Settings, _args: argparse.Namespace) -> int:
    from hopper.bootstrap import bootstrap
    from workers.consumer_watch import ConsumerWatch
    from workers.dispatcher import Dispatcher
    from workers.scheduler import SchedulerLoop

    wiring = bootstrap(settings, pool_size=2)  # the loop's connection and the dispatcher's
    telemetry.serve(settings)
    watch = ConsumerWatch(lambda: wiring.metrics.starved_queues(wiring.consumers))
    listen = (
        (settings.listen_database_url or settings.database_url) if settings.is_postgres else None
    )
    dispatcher = Dispatcher(wiring.dispatch, listen)
    dispatcher.start()
    SchedulerLoop(wiring.scheduling, wiring.dispatch, watch, wiring.schedule_firing).run_forever()
    dispatcher.stop()
    return 0


def _generate_key(_settings: Settings, _args: argparse.Namespace) -> int:
    from domain.secrets import generate_key

    print(generate_key())
    return 0


def _reencrypt(settings: Settings, _args: argparse.Namespace) -> int:
    from hopper.bootstrap import bootstrap
    from hopper.reencrypt import reencrypt_secrets

    count = reencrypt_secrets(bootstrap(settings, pool_size=1))
    print(f"re-encrypted {count} stored secrets under the newest key", file=sys.stderr)
    return 0


def _create_tenant(settings: Settings, args: argparse.Namespace) -> int:
    from hopper.bootstrap import bootstrap

    tenant = bootstrap(settings, pool_size=1).access.create_tenant(args.name)
    print(tenant.id)
    return 0


def _set_weight(settings: Settings, args: argparse.Namespace) -> int:
    from hopper.bootstrap import bootstrap

    wiring = bootstrap(settings, pool_size=1)
    tenant = wiring.weights.set_weight(wiring.access.find_tenant(args.tenant).id, args.weight)
    print(f"tenant {tenant.name} ({tenant.id}) has weight {tenant.weight}", file=sys.stderr)
    return 0


def _ceiling(value: str) -> int | str:
    if value == "default":
        return value
    try:
        return int(value)
    except ValueError:
        raise argparse.ArgumentTypeError("expected a whole number or `default`") from None


def _set_quota(settings: Settings, args: argparse.Namespace) -> int:
    from hopper.bootstrap import bootstrap

    asked = {name: getattr(args, name) for name in QUOTAS if getattr(args, name) is not None}
    ceilings = {name: None if value == "default" else value for name, value in asked.items()}
    wiring = bootstrap(settings, pool_size=1)
    tenant = wiring.access.find_tenant(args.tenant)
    quotas = wiring.quotas.set(tenant.id, ceilings)
    shown = ", ".join(f"{name} {getattr(quotas, name):,}" for name in QUOTAS)
    print(f"tenant {tenant.name} ({tenant.id}): {shown}", file=sys.stderr)
    return 0


def _create_key(settings: Settings, args: argparse.Namespace) -> int:
    from hopper.bootstrap import bootstrap

    access = bootstrap(settings, pool_size=1).access
    tenant = access.find_tenant(args.tenant)
    print(access.create_key(tenant.id, args.name, Role(args.role)).secret)
    return 0


def _backup(settings: Settings, args: argparse.Namespace) -> int:
    from hopper.backup import run_backup

    return run_backup(settings, args.file)


def _restore(settings: Settings, args: argparse.Namespace) -> int:
    from hopper.backup import run_restore

    return run_restore(settings, args.file)


def _local_setup(settings: Settings, _args: argparse.Namespace) -> int:
    from hopper.bootstrap import bootstrap

    access = bootstrap(settings, pool_size=1).access
    docs = f"http://{settings.host}:{settings.port}/docs"
    print(f"Hopper docs: {docs}", file=sys.stderr)
    try:
        access.find_tenant("local")
        print("The 'local' tenant exists; make another key with:", file=sys.stderr)
        print(
            "  .venv/bin/hopper keys create --tenant local --role admin --name NAME",
            file=sys.stderr,
        )
    except DomainError:
        tenant = access.create_tenant("local")
        key = access.create_key(tenant.id, "local admin", Role.ADMIN).secret
        print(f"Admin API key for the 'local' tenant (shown once): {key}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
