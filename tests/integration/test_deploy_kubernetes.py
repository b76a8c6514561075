"""The Kubernetes manifests in deploy/kubernetes agree with the code.

Every manifest is valid against the Kubernetes API's schemas (offline, with kubernetes-validate)
and leaves the namespace to `kubectl -n`; every workload runs the project's image (or a pinned
image docker-compose also uses) with the `hopper` command it should, on settings Hopper accepts;
the worker pools serve exactly ``domain.queues.ALL_QUEUES``; pods run locked down, with memory
bounds and a Secret template of placeholders; workers get longer to stop than their grace, and
the web tier and each worker pool have a disruption budget. Probes, ports and Services are in
test_deploy_networking.py, KEDA in test_deploy_keda.py. The checks live in ``deploy_checks``;
the last test shows each one catching a broken copy.
"""

from __future__ import annotations

import pytest

from tests.integration.deploy_checks.breakages import (
    CONTAINER,
    POD,
    SCHEDULER,
    WEB,
    WEBHOOKS,
    WORKER,
    Breakage,
    Check,
    assert_check_catches,
    cases,
    put,
    without_kind,
)
from tests.integration.deploy_checks.files import TEST_KEYS, deploy_files
from tests.integration.deploy_checks.kubernetes import (
    check_commands,
    check_disruption_budgets,
    check_images,
    check_kinds,
    check_no_namespace,
    check_resources,
    check_schemas,
    check_secret_template,
    check_security,
    check_settings_accept,
    check_termination_grace,
    check_worker_pools,
)

CHECKS: list[Check] = [
    check_kinds,
    check_schemas,
    check_no_namespace,
    check_images,
    check_commands,
    check_settings_accept,
    check_worker_pools,
    check_termination_grace,
    check_disruption_budgets,
    check_security,
    check_resources,
    check_secret_template,
]


@pytest.mark.parametrize("check", CHECKS, ids=lambda check: check.__name__)
def test_the_manifests_pass(check: Check) -> None:
    check(deploy_files())


# --- the checks can fail --------------------------------------------------------------------

C = CONTAINER
SECRET = ("Secret", "hopper-secrets")
KEYS = "stringData.HOPPER_ENCRYPTION_KEYS"

BREAKAGES = [
    # the objects
    Breakage(
        "an unknown field",
        put(WEB, f"{C}.imagePullPolice", "Always"),
        check_schemas,
        "'imagePullPolice' was unexpected",
    ),
    Breakage(
        "a wrong type",
        put(SCHEDULER, "spec.replicas", "1"),
        check_schemas,
        "spec.replicas: '1' is not of type 'integer'",
    ),
    Breakage(
        "a namespace",
        put(("ConfigMap", "hopper-config"), "metadata.namespace", "x"),
        check_no_namespace,
        "configmap.yaml names a namespace",
    ),
    Breakage(
        "a Deployment renamed",
        put(SCHEDULER, "metadata.name", "hopper-cron"),
        check_kinds,
        "expected one Deployment hopper-scheduler, found 0",
    ),
    Breakage(
        "no disruption budget at all",
        without_kind("PodDisruptionBudget"),
        check_kinds,
        "no PodDisruptionBudget in deploy/kubernetes",
    ),
    # the image, the command and the settings
    Breakage(
        "an unpinned image",
        put(WORKER, f"{C}.image", "redis:latest"),
        check_images,
        "redis:latest is neither",
    ),
    Breakage(
        "an image docker-compose does not use",
        put(WORKER, f"{C}.image", "someone/redis:7.2"),
        check_images,
        "someone/redis:7.2 is neither",
    ),
    Breakage(
        "a wrong subcommand",
        put(SCHEDULER, f"{C}.args", ["serve"]),
        check_commands,
        "hopper-scheduler runs `hopper serve`, not scheduler",
    ),
    Breakage(
        "a command hopper refuses",
        put(WEB, f"{C}.args", ["serve", "--fast"]),
        check_commands,
        "`hopper serve --fast` is not a valid hopper command",
    ),
    Breakage(
        "a command in place of the entrypoint",
        put(WEB, f"{C}.command", ["gunicorn"]),
        check_commands,
        "hopper-web: command ['gunicorn'] replaces the image's `hopper`",
    ),
    Breakage(
        "a SQLite database",
        put(SECRET, "stringData.DATABASE_URL", "sqlite:////tmp/hopper.db"),
        check_settings_accept,
        "not PostgreSQL",
    ),
    # the queues
    Breakage(
        "a queue that does not exist",
        put(WORKER, f"{C}.args", ["worker", "-Q", "default,long,bulk", "-c", "4"]),
        check_worker_pools,
        "the worker pool listens to ['default', 'long', 'bulk']",
    ),
    Breakage(
        "a queue left out",
        put(WORKER, f"{C}.args.2", "default"),
        check_worker_pools,
        "the worker pool listens to ['default']",
    ),
    Breakage(
        "webhooks on the job pool",
        put(WORKER, f"{C}.args.2", "default,long,webhooks"),
        check_worker_pools,
        "the worker pool listens to ['default', 'long', 'webhooks']",
    ),
    Breakage(
        "no concurrency",
        put(WORKER, f"{C}.args", ["worker", "-Q", "default,long"]),
        check_worker_pools,
        "hopper-worker leaves -c to Celery",
    ),
    # stopping and disruptions
    Breakage(
        "a grace shorter than the worker's",
        put(WORKER, f"{POD}.terminationGracePeriodSeconds", 30),
        check_termination_grace,
        "hopper-worker: terminationGracePeriodSeconds 30 is not above",
    ),
    Breakage(
        "no budget for the webhooks pool",
        put(
            ("PodDisruptionBudget", "hopper-worker-webhooks"),
            "spec.selector.matchLabels",
            {"app.kubernetes.io/component": "nothing"},
        ),
        check_disruption_budgets,
        "no PodDisruptionBudget selects hopper-worker-webhooks",
    ),
    # locked down
    Breakage(
        "a writable root",
        put(WEB, f"{C}.securityContext.readOnlyRootFilesystem", False),
        check_security,
        "web: a writable root",
    ),
    Breakage(
        "a pod that may run as root",
        put(WEBHOOKS, f"{POD}.securityContext.runAsNonRoot", False),
        check_security,
        "worker-webhooks.yaml: the pod may run as root",
    ),
    Breakage(
        "privilege escalation",
        put(SCHEDULER, f"{C}.securityContext.allowPrivilegeEscalation", True),
        check_security,
        "scheduler: may escalate",
    ),
    Breakage("nowhere to write", put(WEB, f"{C}.volumeMounts", []), check_security, "unwritable"),
    Breakage(
        "no memory limit",
        put(WEB, f"{C}.resources.limits", {"cpu": "1"}),
        check_resources,
        "web: no limits.memory",
    ),
    Breakage(
        "a real key in the Secret",
        put(SECRET, KEYS, TEST_KEYS),
        check_secret_template,
        "Secret HOPPER_ENCRYPTION_KEYS holds a value, not a placeholder",
    ),
    Breakage(
        "a real key beside the placeholder",
        put(SECRET, KEYS, f"REPLACE_ME,{TEST_KEYS}"),
        check_secret_template,
        "a real encryption key",
    ),
    Breakage(
        "no Secret template", without_kind("Secret"), check_secret_template, "no Secret template"
    ),
]


@pytest.mark.parametrize("breakage", cases(BREAKAGES))
def test_checks_catch_a_broken_manifest(breakage: Breakage) -> None:
    assert_check_catches(breakage)
