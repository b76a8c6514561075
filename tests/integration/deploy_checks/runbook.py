"""The runbook: a section for each alert, at the anchor its runbook_url names, and none for an
alert that does not exist; every `hopper` command it gives is one hopper accepts."""

from __future__ import annotations

import re
import shlex

from tests.integration.deploy_checks.alerts import alert_rules
from tests.integration.deploy_checks.files import Deploy
from tests.integration.deploy_checks.hopper_cli import parse_hopper

RUNBOOK_SECTION = re.compile(r"^#{2,3} Runbook\n(.*?)(?=^## |\Z)", re.S | re.M)
HOPPER_COMMAND = re.compile(r"`(hopper [^`]+)`")


def _github_slug(heading: str) -> str:
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def runbook_anchors(text: str) -> set[str]:
    """The anchors a page has: explicit ones (<a id=...>, <a name=...>) and its headings'."""
    explicit = re.findall(r"<a\s+(?:id|name)=\"([^\"]+)\"", text)
    headings = re.findall(r"^#{1,6}\s+(.+?)\s*#*$", text, flags=re.MULTILINE)
    return set(explicit) | {_github_slug(heading) for heading in headings}


def runbook_anchor(alert: str) -> str:
    return f"runbook-{alert.lower()}"


def check_alert_runbooks(deploy: Deploy) -> None:
    """Each alert's runbook_url is README.md#runbook-<name>, and that section exists; each
    runbook section names an alert that exists."""
    anchors = runbook_anchors(deploy["runbook"])
    expected = set()
    for rule in alert_rules(deploy):
        name, anchor = rule["alert"], runbook_anchor(rule["alert"])
        assert rule.get("annotations", {}).get("runbook_url", "").endswith(f"README.md#{anchor}"), (
            f"{name}: runbook_url is not README.md#{anchor}"
        )
        assert anchor in anchors, f"{name}: the runbook has no section #{anchor}"
        expected.add(anchor)
    stale = {a for a in anchors if a.startswith("runbook-")} - expected
    assert not stale, f"runbook sections for alerts that do not exist: {sorted(stale)}"


def check_runbook_commands(deploy: Deploy) -> None:
    """Every `hopper ...` command the runbook gives is one `hopper` accepts."""
    section = RUNBOOK_SECTION.search(deploy["runbook"])
    assert section, "no Runbook section"
    commands = HOPPER_COMMAND.findall(section.group(1))
    assert commands, "the runbook gives no hopper command"
    for command in commands:
        parse_hopper(shlex.split(command)[1:])
