"""The Prometheus alert rules in deploy/prometheus and their runbook agree with the code.

Every alert has a name of its own, a severity and a summary, and a query that parses and names
only metrics and labels that ``hopper.telemetry.exposed_metric_names`` says exist, with label
values the code gives; its runbook_url leads to a section of the runbook, and every runbook
section to an alert; every `hopper` command in the runbook is one hopper accepts. The checks
live in ``deploy_checks.alerts`` and ``deploy_checks.runbook``; the last test shows each one
catching a broken copy.
"""

from __future__ import annotations

import pytest

from tests.integration.deploy_checks.alerts import check_alert_queries, check_alerts
from tests.integration.deploy_checks.breakages import (
    Breakage,
    Check,
    assert_check_catches,
    cases,
    put,
    replace,
)
from tests.integration.deploy_checks.files import deploy_files
from tests.integration.deploy_checks.runbook import check_alert_runbooks, check_runbook_commands

CHECKS: list[Check] = [
    check_alert_queries,
    check_alerts,
    check_alert_runbooks,
    check_runbook_commands,
]


@pytest.mark.parametrize("check", CHECKS, ids=lambda check: check.__name__)
def test_the_alerts_and_runbook_pass(check: Check) -> None:
    check(deploy_files())


# --- the checks can fail --------------------------------------------------------------------

FIRST_ALERT, SECOND_ALERT = "groups.0.rules.0", "groups.0.rules.1"
DATABASE_DOWN, WITHOUT_CONSUMER = "groups.0.rules.3.expr", "groups.0.rules.4.expr"
BULK_QUEUE = 'max(hopper_queue_oldest_due_seconds{queue="default" or queue="bulk"})'

ALERT_BREAKAGES = [
    Breakage(
        "an alert that is not PromQL",
        put("alerts", f"{FIRST_ALERT}.expr", replace("(queue)", "(queue")),
        check_alert_queries,
        "alert HopperOldestJobTooOld: not PromQL (unclosed left parenthesis)",
    ),
    Breakage(
        "an alert on a metric that does not exist",
        put("alerts", f"{FIRST_ALERT}.expr", replace("oldest_due", "oldest")),
        check_alert_queries,
        "alert HopperOldestJobTooOld: no process exposes hopper_queue_oldest_seconds",
    ),
    Breakage(
        "an alert on a queue that does not exist",
        put("alerts", f"{FIRST_ALERT}.expr", 'max(hopper_queue_oldest_due_seconds{queue="bulk"})'),
        check_alert_queries,
        "hopper_queue_oldest_due_seconds{queue} is never ['bulk']",
    ),
    Breakage(
        "an `or` alternative on a queue that does not exist",
        put("alerts", f"{FIRST_ALERT}.expr", BULK_QUEUE),
        check_alert_queries,
        "hopper_queue_oldest_due_seconds{queue} is never ['bulk']",
    ),
    Breakage(
        "a selector on a label the metric does not have",
        put("alerts", f"{FIRST_ALERT}.expr", replace("seconds)", 'seconds{tenant="a"})')),
        check_alert_queries,
        "hopper_queue_oldest_due_seconds has no label tenant",
    ),
    Breakage(
        "a match on a label neither side has",
        put("alerts", WITHOUT_CONSUMER, replace("on (queue)", "on (tenant)")),
        check_alert_queries,
        "on/ignoring` names labels ['tenant']",
    ),
    Breakage(
        "a database gauge not aggregated",
        put("alerts", DATABASE_DOWN, replace("max(hopper_database_up)", "hopper_database_up")),
        check_alert_queries,
        "hopper_database_up is not aggregated across web pods",
    ),
    Breakage(
        "no alert rule",
        put("alerts", "groups", []),
        check_alert_queries,
        "no alert rule in deploy/prometheus/alerts.yml",
    ),
    Breakage(
        "an alert without a severity",
        put("alerts", f"{FIRST_ALERT}.labels", {}),
        check_alerts,
        "HopperOldestJobTooOld: severity",
    ),
    Breakage(
        "an alert without a summary",
        put("alerts", f"{FIRST_ALERT}.annotations.summary", ""),
        check_alerts,
        "HopperOldestJobTooOld: no summary",
    ),
    Breakage(
        "an alert name twice",
        put("alerts", f"{SECOND_ALERT}.alert", "HopperOldestJobTooOld"),
        check_alerts,
        "an alert name twice",
    ),
]

RUNBOOK_BREAKAGES = [
    Breakage(
        "a runbook that does not exist",
        put("alerts", f"{FIRST_ALERT}.annotations.runbook_url", "README.md#runbook-nothing"),
        check_alert_runbooks,
        "HopperOldestJobTooOld: runbook_url is not README.md#runbook-hopperoldestjobtooold",
    ),
    Breakage(
        "an alert renamed",
        put("alerts", f"{FIRST_ALERT}.alert", "HopperSomethingElse"),
        check_alert_runbooks,
        "HopperSomethingElse: runbook_url is not README.md#runbook-hoppersomethingelse",
    ),
    Breakage(
        "a runbook section gone",
        put("runbook", "", replace('<a id="runbook-hopperdatabasedown"></a>', "")),
        check_alert_runbooks,
        "HopperDatabaseDown: the runbook has no section #runbook-hopperdatabasedown",
    ),
    Breakage(
        "a runbook section for an alert that does not exist",
        put("runbook", "", lambda text: f'{text}\n<a id="runbook-hoppergone"></a>\n'),
        check_alert_runbooks,
        "runbook sections for alerts that do not exist: ['runbook-hoppergone']",
    ),
    Breakage(
        "a runbook command hopper does not have",
        put("runbook", "", replace("hopper queues pause", "hopper queue pause")),
        check_runbook_commands,
        "`hopper queue pause NAME` is not a valid hopper command",
    ),
    Breakage(
        "no Runbook section",
        put("runbook", "", replace("## Runbook\n", "## Troubles\n")),
        check_runbook_commands,
        "no Runbook section",
    ),
]


@pytest.mark.parametrize("breakage", cases(ALERT_BREAKAGES + RUNBOOK_BREAKAGES))
def test_checks_catch_broken_alerts_or_runbook(breakage: Breakage) -> None:
    assert_check_catches(breakage)
