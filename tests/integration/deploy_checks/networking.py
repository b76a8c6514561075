"""Who reaches which port: probes ask only for paths the app serves, container ports are the
ones Hopper listens on, and the metrics port stays off the public Service."""

from __future__ import annotations

import re
from typing import Any

from domain.settings import Settings
from tests.integration.deploy_checks.files import Deploy
from tests.integration.deploy_checks.hopper_cli import parse_hopper
from tests.integration.deploy_checks.manifests import (
    WORKER_POOLS,
    Manifest,
    args_of,
    container_ports,
    containers,
    each_container,
    named,
    objects,
    pod_spec,
    selects,
    settings_of,
    workloads,
)

WEB_PATHS = {"/healthz", "/readyz"}
METRICS_PATH = "/metrics"
PROBES = ("livenessProbe", "readinessProbe", "startupProbe")
EXEC_URL = re.compile(r"https?://[^/\s'\"]+(/[A-Za-z0-9_./-]*)")
METRICS_SCRAPED = ("hopper-web", *WORKER_POOLS, "hopper-scheduler")

Ports = dict[str | int, int]


def _allowed_paths(settings: Settings, port: int) -> set[str]:
    if port == settings.metrics_port:
        return {METRICS_PATH}
    return WEB_PATHS if port == settings.port else set()


def _check_http_probe(get: dict[str, Any], ports: Ports, settings: Settings) -> None:
    assert get["port"] in ports, f"a probe on port {get['port']}, which is not declared"
    port, path = ports[get["port"]], get.get("path", "/")
    assert path in _allowed_paths(settings, port), (
        f"a probe asks for {path} on port {port}, which the app does not serve"
    )


def _check_exec_probe(command: list[str]) -> None:
    text = " ".join(command)
    paths = EXEC_URL.findall(text)
    assert paths, f"an exec probe that asks nothing of the process: {text}"
    for path in paths:
        assert path == METRICS_PATH and "HOPPER_METRICS_PORT" in text, (
            f"an exec probe asks for {path}; only {METRICS_PATH} on HOPPER_METRICS_PORT is "
            "served to it"
        )


def check_probe(probe: dict[str, Any], ports: Ports, settings: Settings) -> None:
    if "httpGet" in probe:
        _check_http_probe(probe["httpGet"], ports, settings)
    elif "exec" in probe:
        _check_exec_probe(probe["exec"]["command"])
    else:
        assert "tcpSocket" in probe, f"a probe of no known kind: {probe}"
        port = probe["tcpSocket"]["port"]
        assert port in ports, f"a probe on port {port}, which is not declared"


def check_probes(deploy: Deploy) -> None:
    for _, container in each_container(deploy):
        settings, ports = settings_of(deploy, container), container_ports(container)
        for kind in PROBES:
            if kind in container:
                check_probe(container[kind], ports, settings)
    (web,) = pod_spec(named(deploy, "Deployment", "hopper-web"))["containers"]
    assert web["livenessProbe"]["httpGet"]["path"] == "/healthz", "the web liveness probe"
    assert web["readinessProbe"]["httpGet"]["path"] == "/readyz", "the web readiness probe"


def _check_scrape_annotation(workload: Manifest, settings: Settings) -> None:
    annotations = workload["spec"]["template"]["metadata"].get("annotations", {})
    annotated = annotations.get("prometheus.io/port")
    if annotated is not None:
        assert int(annotated) == settings.metrics_port, (
            f"{workload['metadata']['name']}: prometheus.io/port {annotated} is not "
            f"HOPPER_METRICS_PORT {settings.metrics_port}"
        )


def check_ports(deploy: Deploy) -> None:
    """Each container port is the PORT or the HOPPER_METRICS_PORT its environment sets, and the
    scrape annotations name the metrics port."""
    for workload, container in each_container(deploy):
        settings = settings_of(deploy, container)
        serves = {settings.metrics_port}
        if parse_hopper(args_of(container)).command == "serve":
            serves.add(settings.port)
        for port in container.get("ports", []):
            assert port["containerPort"] in serves, (
                f"{workload['metadata']['name']}: port {port['containerPort']} is neither "
                f"PORT nor HOPPER_METRICS_PORT ({sorted(p for p in serves if p)})"
            )
        _check_scrape_annotation(workload, settings)


def _service_ports(deploy: Deploy, service: Manifest) -> set[int]:
    """The container ports a Service sends traffic to, across the pods it selects."""
    reached: set[int] = set()
    for workload in workloads(deploy):
        if not selects(service["spec"].get("selector", {}), workload):
            continue
        for container in containers(workload):
            ports = container_ports(container)
            for port in service["spec"]["ports"]:
                target = port.get("targetPort", port["port"])
                if target in ports:
                    reached.add(ports[target])
    return reached


def _check_public_service(deploy: Deploy) -> None:
    """The public Service reaches the web pods' PORT, from port 80 only."""
    web = named(deploy, "Service", "hopper-web")
    (server,) = containers(named(deploy, "Deployment", "hopper-web"))
    reached = _service_ports(deploy, web)
    assert reached == {settings_of(deploy, server).port}, f"the web Service reaches {reached}"
    assert [port["port"] for port in web["spec"]["ports"]] == [80], "the web Service's ports"


def _check_metrics_service(deploy: Deploy) -> None:
    """Headless, so nothing load-balances scrapes, and on every pod that serves metrics."""
    metrics = named(deploy, "Service", "hopper-metrics")
    assert metrics["spec"].get("clusterIP") == "None", "the metrics Service is headless"
    for name in METRICS_SCRAPED:
        assert selects(metrics["spec"]["selector"], named(deploy, "Deployment", name)), (
            f"the metrics Service does not select {name}"
        )


def check_services(deploy: Deploy) -> None:
    """The public Service reaches the web pods' PORT from port 80, and no Service but the
    metrics one reaches or offers the metrics port; that one stays inside the cluster and
    reaches every pod that serves metrics."""
    _check_public_service(deploy)
    metrics_ports = {settings_of(deploy, c).metrics_port for _, c in each_container(deploy)}
    for service in objects(deploy, "Service"):
        name = service["metadata"]["name"]
        if name == "hopper-metrics":
            continue
        reached = _service_ports(deploy, service)
        assert not reached & metrics_ports, f"Service {name} exposes the metrics port"
        offered = {p["port"] for p in service["spec"]["ports"]}
        assert not offered & metrics_ports, f"Service {name} offers the metrics port"
    _check_metrics_service(deploy)
