"""The Grafana dashboard in deploy/grafana agrees with the code.

Every panel uses the dashboard's Prometheus datasource variable and has a query; every query
(panels and variables) parses and names only metrics and labels that
``hopper.telemetry.exposed_metric_names`` says exist, with label values the code gives, and
takes the database gauges (the same on every web pod) with max. The checks live in
``deploy_checks.grafana``; the last test shows each one catching a broken copy.
"""

from __future__ import annotations

import pytest

from tests.integration.deploy_checks.breakages import (
    Breakage,
    Check,
    assert_check_catches,
    cases,
    put,
    replace,
)
from tests.integration.deploy_checks.files import deploy_files
from tests.integration.deploy_checks.grafana import check_dashboard, check_dashboard_queries


@pytest.mark.parametrize(
    "check", [check_dashboard, check_dashboard_queries], ids=lambda check: check.__name__
)
def test_the_dashboard_passes(check: Check) -> None:
    check(deploy_files())


# --- the checks can fail --------------------------------------------------------------------

FIRST_QUERY, QUEUE_VARIABLE = "panels.1.targets.0.expr", "templating.list.1.query.query"

BREAKAGES = [
    Breakage(
        "a metric name that does not exist",
        put("dashboard", FIRST_QUERY, replace("hopper_jobs_waiting", "hopper_jobs_queued")),
        check_dashboard_queries,
        "dashboard panel 'Jobs waiting, by reason': no process exposes hopper_jobs_queued",
    ),
    Breakage(
        "a label the metric does not have",
        put("dashboard", FIRST_QUERY, replace("(queue, reason)", "(queue, tenant)")),
        check_dashboard_queries,
        "`max by/without` names labels ['tenant']",
    ),
    Breakage(
        "a database gauge summed across web pods",
        put("dashboard", FIRST_QUERY, replace("max by", "sum by")),
        check_dashboard_queries,
        "hopper_jobs_waiting is the same on every web pod; aggregate it with max, not sum",
    ),
    Breakage(
        "a dashboard variable that is not defined",
        put("dashboard", FIRST_QUERY, replace("$queue", "$tenant")),
        check_dashboard_queries,
        "the dashboard uses $tenant, which it does not define",
    ),
    Breakage(
        "a variable on a label the metric does not have",
        put("dashboard", QUEUE_VARIABLE, replace(", queue)", ", tenant)")),
        check_dashboard_queries,
        "dashboard variable $queue: hopper_jobs_waiting has no label tenant",
    ),
    Breakage(
        "a variable query that is not label_values",
        put("dashboard", QUEUE_VARIABLE, "query_result(hopper_jobs_waiting)"),
        check_dashboard_queries,
        "not a label_values(metric, label) query",
    ),
    Breakage(
        "a panel without a query",
        put("dashboard", "panels.1.targets", []),
        check_dashboard_queries,
        "dashboard panel 'Jobs waiting, by reason' has no query",
    ),
    Breakage(
        "rows only",
        put("dashboard", "panels", lambda panels: [p for p in panels if p["type"] == "row"]),
        check_dashboard_queries,
        "no PromQL expression in the dashboard's panels",
    ),
    Breakage(
        "a panel on another datasource",
        put("dashboard", "panels.1.datasource", {"type": "prometheus", "uid": "prod"}),
        check_dashboard,
        "panel 'Jobs waiting, by reason' does not use the ${datasource} variable",
    ),
    Breakage(
        "an old Grafana schema",
        put("dashboard", "schemaVersion", 30),
        check_dashboard,
        "schemaVersion 30",
    ),
    Breakage(
        "the queue variable from another metric",
        put("dashboard", QUEUE_VARIABLE, replace("waiting", "running")),
        check_dashboard,
        "the queue variable's query",
    ),
]


@pytest.mark.parametrize("breakage", cases(BREAKAGES))
def test_checks_catch_a_broken_dashboard(breakage: Breakage) -> None:
    assert_check_catches(breakage)
