"""Who reaches which port in deploy/kubernetes: probes ask only for paths the app serves (the
workers' exec probe is run against Hopper's own metrics endpoint), container ports are the ones
Hopper listens on, and the metrics port stays off the public Service and on the headless metrics
Service. The checks live in ``deploy_checks.networking``; the last test shows each one catching a
broken copy.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from wsgiref.simple_server import WSGIServer, make_server

import pytest

from domain.settings import Settings
from hopper import telemetry
from tests.integration.deploy_checks.breakages import (
    CONTAINER,
    SCHEDULER,
    WEB,
    WORKER,
    Breakage,
    Check,
    adding,
    assert_check_catches,
    cases,
    put,
    replace,
    without,
)
from tests.integration.deploy_checks.files import deploy_files
from tests.integration.deploy_checks.manifests import Manifest, named, pod_spec
from tests.integration.deploy_checks.networking import check_ports, check_probes, check_services


@pytest.mark.parametrize(
    "check", [check_probes, check_ports, check_services], ids=lambda check: check.__name__
)
def test_the_manifests_pass(check: Check) -> None:
    check(deploy_files())


def _serve_metrics(token: str) -> tuple[WSGIServer, int]:
    settings = Settings.from_env({"HOPPER_METRICS_PORT": "9100", "HOPPER_METRICS_TOKEN": token})
    app = telemetry._metrics_app(settings, telemetry.registry)
    server = make_server("127.0.0.1", 0, app)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    return server, server.server_port


def _run_probe(script: str, port: int, token: str) -> subprocess.CompletedProcess[bytes]:
    env = {"HOPPER_METRICS_PORT": str(port), "HOPPER_METRICS_TOKEN": token}
    # -I -S: the probe needs the standard library only, and starts faster without the
    # virtualenv's site-packages.
    return subprocess.run(
        [sys.executable, "-I", "-S", "-c", script], env=env, capture_output=True, timeout=20
    )


def test_the_workers_liveness_probe_asks_the_metrics_endpoint() -> None:
    """The exec probe, run as the kubelet would, against Hopper's own metrics endpoint on
    127.0.0.1: it passes with the pod's token and fails with another."""
    container = pod_spec(named(deploy_files(), "Deployment", "hopper-worker"))["containers"][0]
    command = container["livenessProbe"]["exec"]["command"]
    assert command[:2] == ["python", "-c"], command
    token = "a-token-for-this-test-only"
    server, port = _serve_metrics(token)
    try:
        with_token = _run_probe(command[2], port, token)
        assert with_token.returncode == 0, with_token.stderr.decode()
        with_another = _run_probe(command[2], port, "another-token-entirely")
        assert with_another.returncode != 0, "the probe passes with another token"
    finally:
        server.shutdown()
        server.server_close()


# --- the checks can fail --------------------------------------------------------------------

C = CONTAINER
WEB_SERVICE = ("Service", "hopper-web")
METRICS_PORT = {"name": "metrics", "port": 9100, "targetPort": 9100}


def _service(name: str, component: str, port: int, target: str) -> Manifest:
    """Another Service, on the pods of one component."""
    return {
        "_file": "a test's",
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name},
        "spec": {
            "selector": {"app.kubernetes.io/component": component},
            "ports": [{"port": port, "targetPort": target}],
        },
    }


BREAKAGES = [
    Breakage(
        "a probe path /nope",
        put(WEB, f"{C}.livenessProbe.httpGet.path", "/nope"),
        check_probes,
        "a probe asks for /nope on port 8000",
    ),
    Breakage(
        "/readyz on the metrics port",
        put(WEB, f"{C}.readinessProbe.httpGet.port", "metrics"),
        check_probes,
        "a probe asks for /readyz on port 9100",
    ),
    Breakage(
        "the web tier alive only while ready",
        put(WEB, f"{C}.livenessProbe.httpGet.path", "/readyz"),
        check_probes,
        "the web liveness probe",
    ),
    Breakage(
        "a probe on a port not declared",
        put(WEB, f"{C}.startupProbe", {"tcpSocket": {"port": 1234}}),
        check_probes,
        "a probe on port 1234, which is not declared",
    ),
    Breakage(
        "an exec probe of a path the worker does not serve",
        put(WORKER, f"{C}.livenessProbe.exec.command.2", replace("/metrics", "/healthz")),
        check_probes,
        "an exec probe asks for /healthz",
    ),
    Breakage(
        "an exec probe that asks nothing",
        put(WORKER, f"{C}.livenessProbe.exec.command", ["true"]),
        check_probes,
        "an exec probe that asks nothing of the process",
    ),
    Breakage(
        "a port nothing listens on",
        put(SCHEDULER, f"{C}.ports.0.containerPort", 9200),
        check_ports,
        "hopper-scheduler: port 9200 is neither PORT nor HOPPER_METRICS_PORT",
    ),
    Breakage(
        "a scrape annotation on another port",
        put(WEB, "spec.template.metadata.annotations", lambda a: a | {"prometheus.io/port": "81"}),
        check_ports,
        "hopper-web: prometheus.io/port 81 is not HOPPER_METRICS_PORT",
    ),
    Breakage(
        "a Service exposing 9100",
        put(WEB_SERVICE, "spec.ports.1", METRICS_PORT),
        check_services,
        "the web Service reaches {8000, 9100}",
    ),
    Breakage(
        "the public Service on the metrics port",
        put(WEB_SERVICE, "spec.ports.0.targetPort", "metrics"),
        check_services,
        "the web Service reaches {9100}",
    ),
    Breakage(
        "the public Service on another port than 80",
        put(WEB_SERVICE, "spec.ports.0.port", 8080),
        check_services,
        "the web Service's ports",
    ),
    Breakage(
        "another Service reaching the metrics port",
        adding(_service("hopper-worker-debug", "worker", 9100, "metrics")),
        check_services,
        "Service hopper-worker-debug exposes the metrics port",
    ),
    Breakage(
        "another Service offering the metrics port's number",
        adding(_service("hopper-web-alt", "web", 9100, "http")),
        check_services,
        "Service hopper-web-alt offers the metrics port",
    ),
    Breakage(
        "a metrics Service that load-balances",
        put(("Service", "hopper-metrics"), "spec.clusterIP", "10.0.0.9"),
        check_services,
        "the metrics Service is headless",
    ),
    Breakage(
        "the scheduler left unscraped",
        put(SCHEDULER, "spec.template.metadata.labels", without("hopper/metrics")),
        check_services,
        "the metrics Service does not select hopper-scheduler",
    ),
]


@pytest.mark.parametrize("breakage", cases(BREAKAGES))
def test_checks_catch_a_broken_manifest(breakage: Breakage) -> None:
    assert_check_catches(breakage)
