"""The deployment files agree with the code.

docker-compose.yml is valid (checked offline by ``docker-compose config``, no engine needed) and
brings up the whole stack; the Procfile and the compose worker listen to exactly
``domain.queues.ALL_QUEUES``; every Hopper process gets the same image and the same wiring; the
worker can be scaled. The checks are plain functions so that the last test can show each of them
catching a broken file.
"""

from __future__ import annotations

import copy
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from domain.settings import ConfigError, Settings
from hopper.queue_check import problems
from tests.integration.deploy_checks.files import COMPOSE_FILE, ROOT, TEST_KEYS
from tests.integration.deploy_checks.hopper_cli import POOLS, check_worker_queues, parse_hopper
from workers.celery_app import known_queues

PROCFILE = ROOT / "Procfile"

SERVICES = {
    "postgres",
    "rabbitmq",
    "redis",
    "migrate",
    "web",
    "worker",
    "http",
    "webhooks",
    "scheduler",
    "flower",
}
HOPPER_SERVICES = ("migrate", "web", "worker", "http", "webhooks", "scheduler")
HOPPER_COMMANDS = {
    "migrate": "migrate",
    "web": "serve",
    "worker": "worker",
    "http": "worker",
    "webhooks": "worker",
    "scheduler": "scheduler",
}
WIRING = ("DATABASE_URL", "BROKER_URL", "REDIS_URL")
INSTALL_HINT = (
    "docker-compose is not on PATH; `make test` installs it through scripts/services.sh "
    "(or run: apt-get install docker-compose)"
)

Config = dict[str, Any]


# --- running docker-compose -----------------------------------------------------------------


def run_compose_config(encryption_keys: str | None) -> subprocess.CompletedProcess[str]:
    executable = shutil.which("docker-compose")
    if executable is None:
        pytest.fail(INSTALL_HINT, pytrace=False)
    # A clean environment and an empty env file: neither the caller's COMPOSE_* or HOPPER_*
    # variables nor a developer's .env may change what is checked.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COMPOSE_", "HOPPER_"))}
    if encryption_keys is not None:
        env["HOPPER_ENCRYPTION_KEYS"] = encryption_keys
    with tempfile.TemporaryDirectory() as tmp:
        env_file = Path(tmp) / "empty.env"
        env_file.write_text("")
        return subprocess.run(
            [executable, "--env-file", str(env_file), "-f", str(COMPOSE_FILE), "config"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )


@cache
def _compose_output() -> str:
    result = run_compose_config(TEST_KEYS)
    assert result.returncode == 0, f"docker-compose config failed:\n{result.stderr}"
    return result.stdout


def compose_config() -> Config:
    """The compose file as docker-compose resolves it (anchors merged, variables interpolated).
    A fresh copy each time, so a test may change it."""
    config = yaml.safe_load(_compose_output())
    assert isinstance(config, dict) and isinstance(config.get("services"), dict), config
    return config


# --- reading commands -----------------------------------------------------------------------


def argv_of(command: str | list[str]) -> list[str]:
    return shlex.split(command) if isinstance(command, str) else list(command)


def procfile_entries() -> dict[str, list[str]]:
    entries: dict[str, list[str]] = {}
    for line in PROCFILE.read_text().splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        name, sep, command = line.partition(":")
        assert sep, f"malformed Procfile line: {line!r}"
        assert name.strip() not in entries, f"Procfile entry {name.strip()!r} appears twice"
        entries[name.strip()] = shlex.split(command)
    return entries


# --- the checks -----------------------------------------------------------------------------


def check_services(config: Config) -> None:
    assert set(config["services"]) == SERVICES


def check_compose_worker_queues(config: Config) -> None:
    for pool in POOLS:
        check_worker_queues(argv_of(config["services"][pool]["command"]), pool)


def check_commands(config: Config) -> None:
    for name, command in HOPPER_COMMANDS.items():
        args = parse_hopper(argv_of(config["services"][name].get("command", [])))
        assert args.command == command, f"{name} runs `hopper {args.command}`, not {command}"


def _environment(service: Config) -> dict[str, str]:
    environment = service.get("environment") or {}
    if isinstance(environment, list):
        environment = dict(item.split("=", 1) for item in environment)
    return {key: str(value) for key, value in environment.items()}


def check_same_image_and_wiring(config: Config) -> None:
    services = config["services"]
    builds = {
        name: (services[name].get("image"), repr(services[name].get("build")))
        for name in HOPPER_SERVICES
    }
    assert len(set(builds.values())) == 1, f"Hopper services differ in image/build: {builds}"
    assert "build" in services["web"], (
        "the Hopper services do not build the image from this repository"
    )
    assert Path(services["web"]["build"]["context"]).resolve() == ROOT
    for variable in (*WIRING, "HOPPER_ENCRYPTION_KEYS"):
        values = {name: _environment(services[name]).get(variable) for name in HOPPER_SERVICES}
        assert len(set(values.values())) == 1, f"{variable} differs between services: {values}"
        assert next(iter(values.values())), f"{variable} is not set: {values}"


def check_wiring_reaches_services(config: Config) -> None:
    services = config["services"]
    env = _environment(services["web"])
    postgres = _environment(services["postgres"])
    rabbitmq = _environment(services["rabbitmq"])

    database = urlsplit(env["DATABASE_URL"])
    assert database.scheme == "postgresql+psycopg"
    assert (database.hostname, database.port or 5432) == ("postgres", 5432)
    assert (database.username, database.password, database.path.lstrip("/")) == (
        postgres["POSTGRES_USER"],
        postgres["POSTGRES_PASSWORD"],
        postgres["POSTGRES_DB"],
    )

    broker = urlsplit(env["BROKER_URL"])
    assert broker.scheme == "amqp"
    assert (broker.hostname, broker.port or 5672) == ("rabbitmq", 5672)
    assert (broker.username, broker.password, broker.path.lstrip("/")) == (
        rabbitmq["RABBITMQ_DEFAULT_USER"],
        rabbitmq["RABBITMQ_DEFAULT_PASS"],
        rabbitmq["RABBITMQ_DEFAULT_VHOST"],
    )
    # Flower must watch the very vhost the workers use, or it shows nothing.
    assert _environment(services["flower"]).get("CELERY_BROKER_URL") == env["BROKER_URL"]

    assert urlsplit(env["REDIS_URL"]).hostname == "redis"


def check_settings_accept(config: Config) -> None:
    for name in HOPPER_SERVICES:
        try:
            settings = Settings.from_env(_environment(config["services"][name]))
        except ConfigError as exc:
            pytest.fail(f"{name}: Hopper refuses its environment: {exc}", pytrace=False)
        assert not settings.embedded and settings.is_postgres, name
        assert settings.redis_url and settings.encryption_keys, name


def check_worker_scalable(config: Config) -> None:
    for pool in POOLS:
        worker = config["services"][pool]
        assert "container_name" not in worker, f"a fixed container_name stops `--scale {pool}=N`"
        assert not worker.get("ports"), f"a host port stops `--scale {pool}=N` (they would clash)"
        # Celery names the node after the hostname: scaled workers need distinct hostnames.
        assert "hostname" not in worker, f"a fixed hostname gives every scaled {pool} one node name"


# --- the tests ------------------------------------------------------------------------------


def test_compose_config_is_valid_and_has_the_whole_stack() -> None:
    check_services(compose_config())


def test_compose_refuses_to_start_without_encryption_keys() -> None:
    result = run_compose_config(encryption_keys=None)
    assert result.returncode != 0, "docker-compose accepted the file with no HOPPER_ENCRYPTION_KEYS"
    assert "HOPPER_ENCRYPTION_KEYS" in result.stderr, result.stderr


def test_compose_worker_listens_to_exactly_all_queues() -> None:
    check_compose_worker_queues(compose_config())


def test_procfile_worker_pools_listen_to_exactly_their_queues() -> None:
    for pool in POOLS:
        argv = procfile_entries()[pool]
        assert argv[0] == "hopper", argv
        check_worker_queues(argv[1:], pool)


def test_hoppers_own_queue_check_passes_the_procfile_and_compose_file() -> None:
    """What `hopper queues check` tells an operator whose plugin brings a queue of its own."""
    every_queue = known_queues(Settings.from_env({}))
    assert problems([PROCFILE, COMPOSE_FILE], every_queue) == []
    check = subprocess.run(
        [str(Path(sys.executable).parent / "hopper"), "queues", "check"],
        cwd=ROOT,
        env={
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "HOPPER_JOB_TYPES": "tests.plugin_samples:GOOD",
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert check.returncode == 1, check.stderr
    assert check.stderr.splitlines() == [
        f"hopper: {name}: no worker listens to the queue samples"
        for name in ("Procfile", "docker-compose.yml")
    ]


def test_procfile_runs_the_process_kinds() -> None:
    entries = procfile_entries()
    assert set(entries) == {"web", "worker", "http", "webhooks", "scheduler"}
    assert entries["web"] == ["hopper", "serve"]
    assert entries["worker"][:2] == ["hopper", "worker"]
    assert entries["http"][:2] == ["hopper", "worker"]
    assert entries["webhooks"][:2] == ["hopper", "worker"]
    assert entries["scheduler"] == ["hopper", "scheduler"]


def test_compose_services_run_the_right_hopper_commands() -> None:
    check_commands(compose_config())


def test_hopper_services_share_image_and_wiring() -> None:
    config = compose_config()
    check_same_image_and_wiring(config)
    check_wiring_reaches_services(config)
    check_settings_accept(config)
    assert _environment(config["services"]["web"])["HOPPER_ENCRYPTION_KEYS"] == TEST_KEYS


def test_worker_can_be_scaled() -> None:
    check_worker_scalable(compose_config())


def _set(path: str, value: Any) -> Callable[[Config], None]:
    *parents, last = path.split(".")

    def mutate(config: Config) -> None:
        node = config
        for key in parents:
            node = node.setdefault(key, {})
        node[last] = value

    return mutate


def _drop(path: str) -> Callable[[Config], None]:
    *parents, last = path.split(".")

    def mutate(config: Config) -> None:
        node = config
        for key in parents:
            node = node[key]
        del node[last]

    return mutate


BREAKAGES: list[tuple[str, Callable[[Config], None], Callable[[Config], None]]] = [
    ("a missing service", _drop("services.flower"), check_services),
    ("an extra service", _set("services.extra", {"image": "x"}), check_services),
    (
        "a queue dropped",
        _set("services.worker.command", "worker -Q default"),
        check_compose_worker_queues,
    ),
    (
        "an unknown queue",
        _set("services.worker.command", ["worker", "-Q", "default,long,bulk"]),
        check_compose_worker_queues,
    ),
    ("a wrong subcommand", _set("services.scheduler.command", "serve"), check_commands),
    ("another image", _set("services.worker.image", "other:1"), check_same_image_and_wiring),
    (
        "another database",
        _set("services.scheduler.environment.DATABASE_URL", "postgresql://x@y/z"),
        check_same_image_and_wiring,
    ),
    ("no Redis", _drop("services.migrate.environment.REDIS_URL"), check_same_image_and_wiring),
    (
        "a wrong vhost",
        _set("services.rabbitmq.environment.RABBITMQ_DEFAULT_VHOST", "other"),
        check_wiring_reaches_services,
    ),
    (
        "flower elsewhere",
        _set("services.flower.environment.CELERY_BROKER_URL", "amqp://guest@rabbitmq//"),
        check_wiring_reaches_services,
    ),
    (
        "a bad URL",
        _set("services.worker.environment.BROKER_URL", "http://rabbitmq"),
        check_settings_accept,
    ),
    ("a container name", _set("services.worker.container_name", "w"), check_worker_scalable),
    ("a host port", _set("services.worker.ports", ["5000:5000"]), check_worker_scalable),
    ("a fixed hostname", _set("services.worker.hostname", "w"), check_worker_scalable),
    (
        "webhooks on the job pool",
        _set("services.worker.command", "worker -Q default,long,webhooks"),
        check_compose_worker_queues,
    ),
    ("a fixed webhooks name", _set("services.webhooks.container_name", "h"), check_worker_scalable),
]


@pytest.mark.parametrize(
    ("mutate", "check"),
    [pytest.param(mutate, check, id=name) for name, mutate, check in BREAKAGES],
)
def test_checks_catch_a_broken_compose_file(
    mutate: Callable[[Config], None], check: Callable[[Config], None]
) -> None:
    config = copy.deepcopy(compose_config())
    check(config)  # passes on the real file
    mutate(config)
    with pytest.raises((AssertionError, pytest.fail.Exception)):
        check(config)


@pytest.mark.parametrize(
    "argv",
    [["worker", "-Q", "default"], ["worker", "-Q", "default,long,default"], ["worker"], ["serve"]],
)
def test_queue_check_catches_a_wrong_worker_command(argv: list[str]) -> None:
    with pytest.raises((AssertionError, pytest.fail.Exception)):
        check_worker_queues(argv)
