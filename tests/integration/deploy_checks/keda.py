"""KEDA's ScaledObjects (a CRD the Kubernetes schemas do not know), checked by shape, and the
Prometheus queries they scale on."""

from __future__ import annotations

import re
from typing import Any

from tests.integration.deploy_checks.files import Deploy
from tests.integration.deploy_checks.manifests import (
    WORKER_POOLS,
    Manifest,
    is_keda,
    named,
    objects,
)
from tests.integration.deploy_checks.promql import check_expressions

KEDA_API = "keda.sh/v1alpha1"
METRIC_TYPES = ("AverageValue", "Value")
SERVER_ADDRESS = re.compile(r"https?://[^/\s]+")


def _check_trigger(trigger: dict[str, Any], where: str) -> None:
    assert trigger["type"] == "prometheus", f"{where}: a {trigger['type']} trigger"
    metric_type = trigger.get("metricType", "AverageValue")
    assert metric_type in METRIC_TYPES, f"{where}: metricType {metric_type}"
    metadata = trigger["metadata"]
    assert all(isinstance(v, str) for v in metadata.values()), "KEDA takes strings only"
    assert metadata["query"].strip(), f"{where}: an empty query"
    assert float(metadata["threshold"]) > 0, f"{where}: threshold {metadata['threshold']}"
    assert SERVER_ADDRESS.match(metadata["serverAddress"]), f"{where}: {metadata}"


def _check_scaled_object(deploy: Deploy, scaled: Manifest) -> str:
    """Checks one ScaledObject; returns the name of the Deployment it scales."""
    where = f"ScaledObject {scaled['metadata']['name']}"
    assert scaled["apiVersion"] == KEDA_API, f"{where}: {scaled['apiVersion']}"
    spec = scaled["spec"]
    ref = spec["scaleTargetRef"]
    assert ref.get("kind", "Deployment") == "Deployment", f"{where}: scales {ref}"
    target = named(deploy, "Deployment", ref["name"])
    assert "replicas" not in target["spec"], f"{ref['name']} sets replicas KEDA owns"
    low, high = spec.get("minReplicaCount", 0), spec["maxReplicaCount"]
    assert 0 <= low <= high, f"{where}: replicas from {low} to {high}"
    assert spec["triggers"], f"{where} has no trigger"
    for trigger in spec["triggers"]:
        _check_trigger(trigger, where)
    return ref["name"]


def check_scaled_objects(deploy: Deploy) -> None:
    """One ScaledObject per worker pool, each scaling an existing Deployment that leaves its
    replica count to the autoscaler, on Prometheus queries."""
    for manifest in filter(is_keda, deploy["manifests"]):
        assert manifest["kind"] == "ScaledObject", f"{manifest['_file']}: {manifest['kind']}"
    targets = [_check_scaled_object(deploy, s) for s in objects(deploy, "ScaledObject")]
    assert sorted(targets) == sorted(WORKER_POOLS), f"ScaledObjects scale {targets}"


def keda_expressions(deploy: Deploy) -> list[tuple[str, str]]:
    return [
        (f"ScaledObject {scaled['metadata']['name']}", trigger["metadata"]["query"])
        for scaled in objects(deploy, "ScaledObject")
        for trigger in scaled["spec"]["triggers"]
    ]


def check_keda_queries(deploy: Deploy) -> None:
    check_expressions(keda_expressions(deploy), "the ScaledObjects' triggers")
