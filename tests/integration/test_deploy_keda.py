"""KEDA's ScaledObjects in deploy/kubernetes/keda scale the worker pools on Prometheus.

A CRD the Kubernetes schemas do not know, so checked by shape: one ScaledObject per worker pool,
each scaling an existing Deployment that leaves its replica count to the autoscaler, on
Prometheus triggers KEDA can read; and each trigger's query passes the PromQL checks the
dashboard's and the alerts' pass. The checks live in ``deploy_checks.keda``; the last test shows
each one catching a broken copy.
"""

from __future__ import annotations

import pytest

from tests.integration.deploy_checks.breakages import (
    WEBHOOKS,
    Breakage,
    Check,
    assert_check_catches,
    cases,
    put,
    replace,
    without_kind,
)
from tests.integration.deploy_checks.files import deploy_files
from tests.integration.deploy_checks.keda import check_keda_queries, check_scaled_objects


@pytest.mark.parametrize(
    "check", [check_scaled_objects, check_keda_queries], ids=lambda check: check.__name__
)
def test_the_scaled_objects_pass(check: Check) -> None:
    check(deploy_files())


# --- the checks can fail --------------------------------------------------------------------

SCALED = ("ScaledObject", "hopper-worker")
SCALED_WEBHOOKS = ("ScaledObject", "hopper-worker-webhooks")
AGE, DEPTH = "spec.triggers.0", "spec.triggers.1"  # hopper-worker's triggers

BREAKAGES = [
    Breakage(
        "KEDA scaling a Deployment that does not exist",
        put(SCALED, "spec.scaleTargetRef.name", "hopper-workers"),
        check_scaled_objects,
        "expected one Deployment hopper-workers, found 0",
    ),
    Breakage(
        "KEDA scaling one pool twice",
        put(SCALED_WEBHOOKS, "spec.scaleTargetRef.name", "hopper-worker"),
        check_scaled_objects,
        "ScaledObjects scale ['hopper-worker-http', 'hopper-worker', 'hopper-worker']",
    ),
    Breakage(
        "KEDA scaling a StatefulSet",
        put(SCALED, "spec.scaleTargetRef.kind", "StatefulSet"),
        check_scaled_objects,
        "ScaledObject hopper-worker: scales",
    ),
    Breakage(
        "KEDA scaling a Deployment that sets its replicas",
        put(WEBHOOKS, "spec.replicas", 2),
        check_scaled_objects,
        "hopper-worker-webhooks sets replicas KEDA owns",
    ),
    Breakage(
        "a KEDA kind misspelt",
        put(SCALED, "kind", "ScaledObjekt"),
        check_scaled_objects,
        "keda/worker.yaml: ScaledObjekt",
    ),
    Breakage(
        "a KEDA API version KEDA does not serve",
        put(SCALED, "apiVersion", "keda.sh/v1beta9"),
        check_scaled_objects,
        "ScaledObject hopper-worker: keda.sh/v1beta9",
    ),
    Breakage(
        "a maximum below the minimum",
        put(SCALED, "spec.maxReplicaCount", 0),
        check_scaled_objects,
        "ScaledObject hopper-worker: replicas from 1 to 0",
    ),
    Breakage(
        "no trigger",
        put(SCALED, "spec.triggers", []),
        check_scaled_objects,
        "ScaledObject hopper-worker has no trigger",
    ),
    Breakage(
        "a KEDA trigger that is not Prometheus",
        put(SCALED_WEBHOOKS, "spec.triggers.0.type", "rabbitmq"),
        check_scaled_objects,
        "ScaledObject hopper-worker-webhooks: a rabbitmq trigger",
    ),
    Breakage(
        "a metric type for CPU",
        put(SCALED, f"{AGE}.metricType", "Utilization"),
        check_scaled_objects,
        "ScaledObject hopper-worker: metricType Utilization",
    ),
    Breakage(
        "a KEDA threshold that is not a string",
        put(SCALED, f"{DEPTH}.metadata.threshold", 8),
        check_scaled_objects,
        "KEDA takes strings only",
    ),
    Breakage(
        "a threshold of zero",
        put(SCALED, f"{DEPTH}.metadata.threshold", "0"),
        check_scaled_objects,
        "ScaledObject hopper-worker: threshold 0",
    ),
    Breakage(
        "an empty query",
        put(SCALED, f"{AGE}.metadata.query", " "),
        check_scaled_objects,
        "ScaledObject hopper-worker: an empty query",
    ),
    Breakage(
        "a Prometheus address that is not a URL",
        put(SCALED, f"{AGE}.metadata.serverAddress", "prometheus:9090"),
        check_scaled_objects,
        "ScaledObject hopper-worker: {",
    ),
    Breakage(
        "a KEDA query on a queue that does not exist",
        put(SCALED, f"{AGE}.metadata.query", replace("default|long", "default|bulk")),
        check_keda_queries,
        "ScaledObject hopper-worker: hopper_queue_oldest_due_seconds{queue} is never ['bulk']",
    ),
    Breakage(
        "a query summing a database gauge",
        put(SCALED_WEBHOOKS, "spec.triggers.0.metadata.query", replace("max(", "sum(")),
        check_keda_queries,
        "hopper_webhook_deliveries_pending is the same on every web pod",
    ),
    Breakage(
        "no ScaledObject to take queries from",
        without_kind("ScaledObject"),
        check_keda_queries,
        "no PromQL expression in the ScaledObjects' triggers",
    ),
]


@pytest.mark.parametrize("breakage", cases(BREAKAGES))
def test_checks_catch_a_broken_scaled_object(breakage: Breakage) -> None:
    assert_check_catches(breakage)
