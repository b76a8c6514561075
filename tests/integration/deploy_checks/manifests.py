"""Ways around the Kubernetes manifests: objects by kind and name, their pods' containers, and
what a container's environment makes of Hopper's settings."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from domain.settings import ConfigError, Settings
from tests.integration.deploy_checks.files import TEST_KEYS, Deploy

Manifest = dict[str, Any]
Container = dict[str, Any]

# Which workload runs which `hopper` command; the worker pools by the Procfile's names.
PROCESSES = {
    "hopper-migrate": "migrate",
    "hopper-web": "serve",
    "hopper-worker": "worker",
    "hopper-worker-http": "worker",
    "hopper-worker-webhooks": "worker",
    "hopper-scheduler": "scheduler",
}
JOBS = {"hopper-migrate"}  # the workloads that run once; the others are Deployments
WORKER_POOLS = {
    "hopper-worker": "worker",
    "hopper-worker-http": "http",
    "hopper-worker-webhooks": "webhooks",
}


def objects(deploy: Deploy, kind: str) -> list[Manifest]:
    return [m for m in deploy["manifests"] if m.get("kind") == kind]


def named(deploy: Deploy, kind: str, name: str) -> Manifest:
    found = [m for m in objects(deploy, kind) if m["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name}, found {len(found)}"
    return found[0]


def workload_named(deploy: Deploy, name: str) -> Manifest:
    return named(deploy, "Job" if name in JOBS else "Deployment", name)


def workloads(deploy: Deploy) -> list[Manifest]:
    return objects(deploy, "Deployment") + objects(deploy, "Job")


def pod_spec(workload: Manifest) -> dict[str, Any]:
    return workload["spec"]["template"]["spec"]


def containers(workload: Manifest) -> list[Container]:
    spec = pod_spec(workload)
    return [*spec.get("initContainers", []), *spec["containers"]]


def each_container(deploy: Deploy) -> Iterator[tuple[Manifest, Container]]:
    """Every container of every workload (init containers too), with its workload."""
    for workload in workloads(deploy):
        for container in containers(workload):
            yield workload, container


def args_of(container: Container) -> list[str]:
    return [str(arg) for arg in container.get("args", [])]


def is_keda(manifest: Manifest) -> bool:
    """KEDA's objects are a CRD: the Kubernetes schemas do not know them."""
    return str(manifest.get("apiVersion")).startswith("keda.sh/")


def _secret_value(deploy: Deploy, name: str, key: str) -> str:
    return named(deploy, "Secret", name)["stringData"][key]


def env_of(deploy: Deploy, container: Container) -> dict[str, str]:
    """The container's environment as Kubernetes builds it: envFrom first, then env."""
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            env |= named(deploy, "ConfigMap", source["configMapRef"]["name"]).get("data", {})
        if "secretRef" in source:
            env |= named(deploy, "Secret", source["secretRef"]["name"]).get("stringData", {})
    for variable in container.get("env", []):
        if "value" in variable:
            env[variable["name"]] = str(variable["value"])
        elif "secretKeyRef" in variable.get("valueFrom", {}):
            ref = variable["valueFrom"]["secretKeyRef"]
            env[variable["name"]] = _secret_value(deploy, ref["name"], ref["key"])
    return {key: str(value) for key, value in env.items()}


def settings_of(deploy: Deploy, container: Container) -> Settings:
    """The settings Hopper would read from the container's environment, with a real key in
    place of the Secret template's placeholder."""
    env = env_of(deploy, container) | {"HOPPER_ENCRYPTION_KEYS": TEST_KEYS}
    try:
        return Settings.from_env(env)
    except ConfigError as exc:
        pytest.fail(f"{container['name']}: Hopper refuses its environment: {exc}", pytrace=False)


def container_ports(container: Container) -> dict[str | int, int]:
    """Each port by its name and by its number."""
    ports: dict[str | int, int] = {}
    for port in container.get("ports", []):
        ports[port["containerPort"]] = port["containerPort"]
        if "name" in port:
            ports[port["name"]] = port["containerPort"]
    return ports


def selects(selector: dict[str, str], workload: Manifest) -> bool:
    """Whether the label selector picks the workload's pods (an empty one picks none here)."""
    labels = workload["spec"]["template"]["metadata"].get("labels", {})
    return bool(selector) and selector.items() <= labels.items()
