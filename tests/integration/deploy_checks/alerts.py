"""The Prometheus alert rules: each has a unique name, a severity and a summary, and a query
that passes the PromQL checks."""

from __future__ import annotations

from typing import Any

from tests.integration.deploy_checks.files import Deploy
from tests.integration.deploy_checks.promql import check_expressions

SEVERITIES = {"critical", "warning", "info"}

Rule = dict[str, Any]


def alert_rules(deploy: Deploy) -> list[Rule]:
    rules = [rule for group in deploy["alerts"]["groups"] for rule in group["rules"]]
    assert rules, "no alert rule in deploy/prometheus/alerts.yml"
    return rules


def check_alert_queries(deploy: Deploy) -> None:
    found = [(f"alert {rule['alert']}", rule["expr"]) for rule in alert_rules(deploy)]
    check_expressions(found, "the alert rules")


def check_alerts(deploy: Deploy) -> None:
    """Each alert has a name of its own, a severity and a summary."""
    rules = alert_rules(deploy)
    names = [rule["alert"] for rule in rules]
    assert len(set(names)) == len(names), f"an alert name twice: {names}"
    for rule in rules:
        name = rule["alert"]
        assert rule.get("labels", {}).get("severity") in SEVERITIES, f"{name}: severity"
        assert rule.get("annotations", {}).get("summary"), f"{name}: no summary"
