"""PromQL expressions checked against what Hopper exposes: each parses, names only metrics and
labels that exist and label values the code gives, and aggregates the database gauges (the same
on every web pod) with max."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import promql_parser
import pytest

from tests.integration.deploy_checks.metrics import (
    SAME_ON_EVERY_POD,
    TARGET_LABELS,
    known_values,
    metric_labels,
)

# What a dashboard variable becomes in an expression: a value no check holds against the known
# label values.
VARIABLE_VALUE = "grafana-variable"
METRIC_NAME = re.compile(r"\bhopper_[a-z0-9_]+")
PLAIN_VALUE = re.compile(r"[a-z_]+")
LEAVES = (promql_parser.VectorSelector, promql_parser.NumberLiteral, promql_parser.StringLiteral)
SINGLE_CHILD = (promql_parser.UnaryExpr, promql_parser.ParenExpr, promql_parser.SubqueryExpr)


def _children(node: Any) -> list[Any]:
    if isinstance(node, promql_parser.MatrixSelector):
        return [node.vector_selector]
    if isinstance(node, promql_parser.Call):
        return list(node.args)
    if isinstance(node, promql_parser.AggregateExpr):
        return [node.expr] + ([node.param] if isinstance(node.param, promql_parser.Expr) else [])
    if isinstance(node, promql_parser.BinaryExpr):
        return [node.lhs, node.rhs]
    if isinstance(node, SINGLE_CHILD):
        return [node.expr]
    # A node of a kind not listed here would hide its selectors from every check.
    assert isinstance(node, LEAVES), f"a PromQL node the checks do not know: {type(node)}"
    return []


def walk(node: Any, parents: tuple[Any, ...] = ()) -> Iterator[tuple[Any, tuple[Any, ...]]]:
    yield node, parents
    for child in _children(node):
        yield from walk(child, (*parents, node))


def labels_under(node: Any) -> set[str]:
    labels = set(TARGET_LABELS)
    for each, _ in walk(node):
        if isinstance(each, promql_parser.VectorSelector) and each.name:
            labels |= metric_labels().get(each.name, set())
    return labels


def _check_values(name: str, matcher: Any, where: str) -> None:
    known = known_values(name, matcher.name)
    if known is None or VARIABLE_VALUE in matcher.value:
        return
    values = matcher.value.split("|") if str(matcher.op).endswith("Re") else [matcher.value]
    if all(PLAIN_VALUE.fullmatch(value) for value in values):
        unknown = set(values) - known
        assert not unknown, f"{where}: {name}{{{matcher.name}}} is never {sorted(unknown)}"


def _matchers(selector: Any) -> list[Any]:
    """The selector's matchers, those in its `or` alternatives too."""
    alternatives = selector.matchers.or_matchers
    return [*selector.matchers.matchers, *(m for group in alternatives for m in group)]


def _check_selector(selector: Any, parents: tuple[Any, ...], where: str, across_pods: bool) -> None:
    name = selector.name
    assert name in metric_labels(), f"{where}: no process exposes {name}"
    allowed = metric_labels()[name] | TARGET_LABELS | {"__name__"}
    for matcher in _matchers(selector):
        assert matcher.name in allowed, f"{where}: {name} has no label {matcher.name}"
        _check_values(name, matcher, where)
    if across_pods and name in SAME_ON_EVERY_POD:
        _check_aggregated_by_max(name, parents, where)


def _check_aggregated_by_max(name: str, parents: tuple[Any, ...], where: str) -> None:
    """Every web pod reports the database's figures: a sum would count them once a pod."""
    for parent in reversed(parents):
        if isinstance(parent, promql_parser.Call) and parent.func.name.startswith("absent"):
            return
        if isinstance(parent, promql_parser.AggregateExpr):
            assert str(parent.op) in ("max", "min"), (
                f"{where}: {name} is the same on every web pod; aggregate it with max, not "
                f"{parent.op}"
            )
            return
    pytest.fail(f"{where}: {name} is not aggregated across web pods (max by ...)", pytrace=False)


def _check_grouping(node: Any, where: str) -> None:
    if isinstance(node, promql_parser.AggregateExpr) and node.modifier is not None:
        missing = set(node.modifier.labels) - labels_under(node.expr)
        assert not missing, f"{where}: `{node.op} by/without` names labels {sorted(missing)}"
    if isinstance(node, promql_parser.BinaryExpr) and node.modifier is not None:
        modifier = node.modifier
        named_labels = set(modifier.matching.labels if modifier.matching else [])
        named_labels |= set(modifier.group_labels or [])
        missing = named_labels - labels_under(node.lhs) - labels_under(node.rhs)
        assert not missing, f"{where}: `{node.op} on/ignoring` names labels {sorted(missing)}"


def parse(expression: str, where: str) -> Any:
    try:
        return promql_parser.parse(expression)
    except ValueError as exc:
        pytest.fail(f"{where}: not PromQL ({exc}): {expression}", pytrace=False)


def check_promql(expression: str, where: str, across_pods: bool = True) -> None:
    """The expression parses; its metrics exist, with the labels it names and the values it
    matches; database gauges are aggregated with max (``across_pods``: the expression's values
    are series, not, as in label_values, label values)."""
    for name in METRIC_NAME.findall(expression):
        assert name in metric_labels(), f"{where}: no process exposes {name}"
    for node, parents in walk(parse(expression, where)):
        if isinstance(node, promql_parser.VectorSelector):
            _check_selector(node, parents, where, across_pods)
        _check_grouping(node, where)


def check_expressions(found: list[tuple[str, str]], source: str) -> None:
    """Each (where, expression) passes check_promql; none at all is a source misread."""
    assert found, f"no PromQL expression in {source}"
    for where, expression in found:
        check_promql(expression, where)


def check_label_values(query: str, where: str) -> None:
    """Grafana's label_values(selector, label): the selector is PromQL with that label."""
    match = re.fullmatch(r"\s*label_values\((.+),\s*(\w+)\s*\)\s*", query)
    assert match, f"{where}: not a label_values(metric, label) query: {query}"
    selector, label = match.groups()
    check_promql(selector, where, across_pods=False)
    assert label in labels_under(parse(selector, where)), (
        f"{where}: {selector} has no label {label}"
    )
