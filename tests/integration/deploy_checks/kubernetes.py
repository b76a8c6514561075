"""The Kubernetes manifests as objects: valid against the API's schemas, running the project's
image with the right `hopper` command, serving every queue, locked down, and stopping in time."""

from __future__ import annotations

import json
import re
from functools import cache
from typing import Any

import kubernetes_validate

from domain.queues import ALL_QUEUES
from domain.secrets import valid_key
from tests.integration.deploy_checks.files import Deploy, compose_file
from tests.integration.deploy_checks.hopper_cli import POOLS, check_worker_queues, parse_hopper
from tests.integration.deploy_checks.manifests import (
    PROCESSES,
    WORKER_POOLS,
    Container,
    args_of,
    containers,
    each_container,
    is_keda,
    named,
    objects,
    pod_spec,
    selects,
    settings_of,
    workload_named,
)

KUBERNETES_VERSION = "1.31"
REQUIRED_KINDS = ("ConfigMap", "Secret", "Service", "PodDisruptionBudget", "ScaledObject")
DISRUPTION_BUDGETED = ("hopper-web", *WORKER_POOLS)
PINNED_TAG = re.compile(r"v?\d+(\.\d+)*([-.][\w.]+)?")


@cache
def _schema_error(document: str) -> str | None:
    """What the Kubernetes API's schemas (strict: no unknown field) find wrong with the object
    (as JSON: an object met twice is validated once)."""
    try:
        kubernetes_validate.validate(json.loads(document), KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as exc:
        return f"{'.'.join(str(part) for part in exc.path)}: {exc.message}"
    except kubernetes_validate.SchemaNotFoundError as exc:
        return str(exc.message)
    return None


def check_schemas(deploy: Deploy) -> None:
    """Every manifest but KEDA's (check_scaled_objects) is a valid Kubernetes object."""
    validated = [m for m in deploy["manifests"] if not is_keda(m)]
    assert validated, "no Kubernetes object to validate"
    for manifest in validated:
        document = {k: v for k, v in manifest.items() if k != "_file"}
        error = _schema_error(json.dumps(document, sort_keys=True))
        assert error is None, f"{manifest['_file']}: {error}"


def check_no_namespace(deploy: Deploy) -> None:
    assert deploy["manifests"], "no manifest"
    for manifest in deploy["manifests"]:
        assert "namespace" not in manifest["metadata"], (
            f"{manifest['_file']} names a namespace; `kubectl -n` chooses it"
        )


def check_kinds(deploy: Deploy) -> None:
    for name in PROCESSES:
        workload_named(deploy, name)
    for kind in REQUIRED_KINDS:
        assert objects(deploy, kind), f"no {kind} in deploy/kubernetes"


def _known_repositories() -> set[str]:
    images = [service.get("image", "") for service in compose_file()["services"].values()]
    return {image.split(":")[0] for image in images if image}


def check_images(deploy: Deploy) -> None:
    """The project's image, or an image docker-compose.yml also uses, pinned to a version."""
    project = str(compose_file()["x-hopper"]["image"])
    for workload, container in each_container(deploy):
        image = container["image"]
        if image == project:
            continue
        repository, _, tag = image.partition(":")
        pinned = "@sha256:" in image or PINNED_TAG.fullmatch(tag)
        assert repository.split("@")[0] in _known_repositories() and pinned, (
            f"{workload['metadata']['name']}: {image} is neither {project} nor a pinned known image"
        )


def check_commands(deploy: Deploy) -> None:
    """Each Hopper container's arguments are a command `hopper` accepts, and the right one."""
    for name, command in PROCESSES.items():
        for container in containers(workload_named(deploy, name)):
            # The image's ENTRYPOINT is `hopper`; args replace its CMD.
            assert container.get("command", ["hopper"]) == ["hopper"], (
                f"{name}: command {container.get('command')} replaces the image's `hopper`"
            )
            args = parse_hopper(args_of(container))
            assert args.command == command, f"{name} runs `hopper {args.command}`, not {command}"


def check_worker_pools(deploy: Deploy) -> None:
    """Each pool listens to its queues exactly (as the Procfile's do), so that together they
    serve every queue; and says its concurrency: Celery's default is the node's cores."""
    assert sorted(WORKER_POOLS.values()) == sorted(POOLS), "a pool the Procfile does not run"
    served: list[str] = []
    for name, pool in WORKER_POOLS.items():
        (container,) = pod_spec(named(deploy, "Deployment", name))["containers"]
        argv = args_of(container)
        check_worker_queues(argv, pool)
        args = parse_hopper(argv)
        assert args.concurrency, f"{name} leaves -c to Celery, which counts the node's cores"
        served += [queue.strip() for queue in args.queues.split(",")]
    assert sorted(served) == sorted(ALL_QUEUES), f"the pools serve {served}; {ALL_QUEUES} exist"


def check_settings_accept(deploy: Deploy) -> None:
    for _, container in each_container(deploy):
        settings = settings_of(deploy, container)
        assert settings.is_postgres and settings.redis_url and settings.metrics_port, (
            f"{container['name']}: not PostgreSQL, Redis and a metrics port"
        )


def _mounts(container: Container, spec: dict[str, Any]) -> dict[str, dict[str, Any]]:
    volumes = {volume["name"]: volume for volume in spec.get("volumes", [])}
    return {m["mountPath"]: volumes[m["name"]] for m in container.get("volumeMounts", [])}


def check_security(deploy: Deploy) -> None:
    """Non-root, no privilege escalation, a read-only root with emptyDirs where Hopper writes:
    HOPPER_VAR_DIR and /tmp (the metrics' multiprocess files, gunicorn's heartbeats)."""
    for workload, container in each_container(deploy):
        spec, name = pod_spec(workload), container["name"]
        assert spec.get("securityContext", {}).get("runAsNonRoot") is True, (
            f"{workload['_file']}: the pod may run as root"
        )
        context = container.get("securityContext", {})
        assert context.get("allowPrivilegeEscalation") is False, f"{name}: may escalate"
        assert context.get("readOnlyRootFilesystem") is True, f"{name}: a writable root"
        mounts = _mounts(container, spec)
        for path in (str(settings_of(deploy, container).var_dir), "/tmp"):
            assert "emptyDir" in mounts.get(path, {}), f"{name}: {path} unwritable"


def check_resources(deploy: Deploy) -> None:
    for _, container in each_container(deploy):
        resources = container.get("resources", {})
        for bound in ("requests", "limits"):
            assert resources.get(bound, {}).get("memory"), f"{container['name']}: no {bound}.memory"


def check_secret_template(deploy: Deploy) -> None:
    """Placeholders only: never a real key."""
    secrets = objects(deploy, "Secret")
    assert secrets, "no Secret template"
    for secret in secrets:
        values = {**secret.get("stringData", {}), **secret.get("data", {})}
        for key, value in values.items():
            assert "REPLACE_ME" in value, f"Secret {key} holds a value, not a placeholder"
        keys = values.get("HOPPER_ENCRYPTION_KEYS", "")
        assert not any(valid_key(k.strip()) for k in keys.split(",")), "a real encryption key"


def check_disruption_budgets(deploy: Deploy) -> None:
    budgets = objects(deploy, "PodDisruptionBudget")
    for name in DISRUPTION_BUDGETED:
        workload = named(deploy, "Deployment", name)
        assert any(
            selects(budget["spec"]["selector"].get("matchLabels", {}), workload)
            for budget in budgets
        ), f"no PodDisruptionBudget selects {name}"


def check_termination_grace(deploy: Deploy) -> None:
    """A worker pod gets longer to stop than the grace its worker gives running jobs, so the
    hand-back happens before the kubelet's SIGKILL."""
    for name in WORKER_POOLS:
        workload = named(deploy, "Deployment", name)
        termination = pod_spec(workload).get("terminationGracePeriodSeconds", 30)
        for container in containers(workload):
            grace = settings_of(deploy, container).worker_grace_seconds
            assert termination > grace, (
                f"{name}: terminationGracePeriodSeconds {termination} is not above "
                f"HOPPER_WORKER_GRACE_SECONDS {grace}"
            )
