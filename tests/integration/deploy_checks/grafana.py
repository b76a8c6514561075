"""The Grafana dashboard: its shape (a datasource variable every panel uses, the queue variable)
and its queries, Grafana's variables put in as values the PromQL checks accept."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from tests.integration.deploy_checks.files import Deploy
from tests.integration.deploy_checks.promql import (
    VARIABLE_VALUE,
    check_expressions,
    check_label_values,
)

# Grafana's own variables, replaced by a range the parser accepts.
GRAFANA_RANGES = ("$__rate_interval", "$__interval", "$__range")
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
QUEUE_QUERY = "label_values(hopper_jobs_waiting, queue)"

Dashboard = dict[str, Any]


def _panels(dashboard: Dashboard) -> Iterator[dict[str, Any]]:
    """Every panel, those inside a collapsed row too."""
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])


def _variables(dashboard: Dashboard) -> dict[str, dict[str, Any]]:
    return {v["name"]: v for v in dashboard["templating"]["list"]}


def variable_query(variable: dict[str, Any]) -> str:
    """A query variable's query: newer Grafana nests it in an object."""
    query = variable["query"]
    return query["query"] if isinstance(query, dict) else query


def _grafana_expression(expression: str, variables: set[str]) -> str:
    for builtin in GRAFANA_RANGES:
        expression = expression.replace(builtin, "5m")
    for used in re.findall(r"\$\{?(\w+)", expression):
        assert used in variables, f"the dashboard uses ${used}, which it does not define"
    return re.sub(r"\$\{?\w+\}?", VARIABLE_VALUE, expression)


def dashboard_expressions(dashboard: Dashboard) -> list[tuple[str, str]]:
    """Each panel's queries, as PromQL; a panel (other than a row) with none shows nothing."""
    variables = set(_variables(dashboard))
    found = []
    for panel in _panels(dashboard):
        where = f"dashboard panel {panel['title']!r}"
        targets = panel.get("targets", [])
        assert targets or panel["type"] == "row", f"{where} has no query"
        found += [(where, _grafana_expression(t["expr"], variables)) for t in targets]
    return found


def check_dashboard_queries(deploy: Deploy) -> None:
    dashboard = deploy["dashboard"]
    check_expressions(dashboard_expressions(dashboard), "the dashboard's panels")
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            where = f"dashboard variable ${variable['name']}"
            check_label_values(variable_query(variable), where)


def _check_variables(dashboard: Dashboard) -> None:
    variables = _variables(dashboard)
    assert variables["datasource"]["type"] == "datasource", "the datasource variable's type"
    assert variables["datasource"]["query"] == "prometheus", "the datasource variable's query"
    assert variable_query(variables["queue"]) == QUEUE_QUERY, "the queue variable's query"


def check_dashboard(deploy: Deploy) -> None:
    """Grafana's shape: a prometheus datasource variable every query uses, and the queue
    variable from hopper_jobs_waiting."""
    dashboard = deploy["dashboard"]
    assert dashboard["schemaVersion"] >= 36, f"schemaVersion {dashboard['schemaVersion']}"
    _check_variables(dashboard)
    for panel in _panels(dashboard):
        if panel["type"] == "row":
            continue
        for source in (panel, *panel.get("targets", [])):
            assert source["datasource"] == DATASOURCE, (
                f"panel {panel['title']!r} does not use the ${{datasource}} variable"
            )
