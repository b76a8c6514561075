"""Query plans at scale: on a database of its own holding 1,000,000 jobs across 100 tenants (and
every other scanned table at its size beside them, tests/scale.py), each hot query is run as the
code sends it, its statements are captured at the engine, and PostgreSQL's plan for each, after
ANALYZE, must use the index the query was written for and scan no large table whole.

The data is built once for the module (about 25 s)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import create_engine, event

from domain.model import IdempotencyRecord
from domain.repositories import JobFilter
from domain.settings import Settings
from domain.unit_of_work import UnitOfWork
from hopper.bootstrap import Container, bootstrap
from hopper.migrate import migrate
from tests import scale, services

TENANT = "ten_scale042"
# Tables small enough that reading them whole is the right plan: one row a tenant, or fewer.
SMALL = {
    "tenants",
    "webhook_endpoints",
    "alembic_version",
    "queue_pauses",
    "dispatch_clocks",
    "dispatch_shares",
}


@dataclass
class Plan:
    statement: str
    indexes: set[str] = field(default_factory=set)
    whole: set[str] = field(default_factory=set)  # tables read by a sequential scan
    rows_estimated: float = 0.0


@pytest.fixture(scope="module")
def big() -> Iterator[Container]:
    with scale.own_database("hopper_plans") as url:
        settings = Settings.from_env(services.real_env(DATABASE_URL=url))
        migrate(settings)
        engine = create_engine(url)
        seconds = scale.fill(engine)
        engine.dispose()
        print(f"\n{scale.JOBS:,} jobs and their neighbours generated in {seconds:.1f} s")
        container = bootstrap(settings)
        try:
            yield container
        finally:
            container.engine.dispose()


def plans(container: Container, action: Callable[[], object]) -> list[Plan]:
    """Runs ``action``, then asks PostgreSQL how it would run each statement it sent."""
    sent: list[tuple[str, Any]] = []

    def note(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if statement.lstrip().split(None, 1)[0].upper() in {"SELECT", "UPDATE", "DELETE", "WITH"}:
            sent.append((statement, parameters))

    event.listen(container.engine, "before_cursor_execute", note)
    try:
        action()
    finally:
        event.remove(container.engine, "before_cursor_execute", note)
    found = []
    with container.engine.connect() as connection:
        cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
        for statement, parameters in sent:
            cursor.execute("EXPLAIN (FORMAT JSON) " + statement, parameters)
            found.append(_read(statement, json.loads(json.dumps(cursor.fetchone()[0]))[0]["Plan"]))
    return [plan for plan in found if plan.statement.strip() != "SELECT now()"]


def _read(statement: str, node: dict[str, Any]) -> Plan:
    plan = Plan(statement, rows_estimated=node.get("Plan Rows", 0))
    stack = [node]
    while stack:
        current = stack.pop()
        if "Index Name" in current:
            plan.indexes.add(current["Index Name"])
        if current.get("Node Type") == "Seq Scan":
            plan.whole.add(current["Relation Name"])
        stack.extend(current.get("Plans", []))
    return plan


def in_a_transaction(
    container: Container, use: Callable[[UnitOfWork], object]
) -> Callable[[], None]:
    def run() -> None:
        with container.uow() as uow:
            use(uow)  # never committed: the purges and claims delete nothing

    return run


NOW = datetime.now(UTC)
RECENT, LONG_AGO = NOW - timedelta(hours=1), NOW - timedelta(days=29)


def list_page(**filters: Any) -> Callable[[UnitOfWork], object]:
    return lambda uow: uow.jobs.page(TENANT, JobFilter(**filters), None, 21)


CASES: dict[str, tuple[Callable[[UnitOfWork], object], set[str]]] = {
    "list page": (list_page(), {"ix_jobs_tenant_id_id"}),
    "list page, by status": (list_page(status="failed"), {"ix_jobs_tenant_id_status_id"}),
    "list page, by type": (list_page(type="hash"), {"ix_jobs_tenant_id_type_id"}),
    "list page, by schedule": (
        list_page(schedule_id="sch_scale042"),
        {"ix_jobs_tenant_id_schedule_id_id"},
    ),
    "list page, created after": (list_page(created_after=RECENT), {"ix_jobs_tenant_id_created_at"}),
    "list page, created before": (
        list_page(created_before=LONG_AGO),
        {"ix_jobs_tenant_id_created_at"},
    ),
    "list page, next page": (
        lambda uow: uow.jobs.page(TENANT, JobFilter(), "job_" + "0" * 20 + "500000", 21),
        {"ix_jobs_tenant_id_id"},
    ),
    "read a job": (lambda uow: uow.jobs.get(TENANT, "job_" + "0" * 20 + "500042"), {"pk_jobs"}),
    "claim: the job by id": (
        lambda uow: uow.jobs.get_unscoped("job_" + "0" * 20 + "500042"),
        {"pk_jobs"},
    ),
    "attempts of a job": (
        lambda uow: uow.jobs.attempts("job_" + "0" * 20 + "500042"),
        {"ix_job_attempts_job_id_number"},
    ),
    "dispatch: the queues with ready jobs": (
        lambda uow: uow.dispatch.ready_queues(),
        {"ix_jobs_ready"},
    ),
    "dispatch: a queue's tenants with ready jobs, and their shares": (
        lambda uow: uow.dispatch.shares("default"),
        {"ix_jobs_ready"},
    ),
    "dispatch: each tenant's best ready jobs": (
        lambda uow: uow.dispatch.ready("default", [TENANT, "ten_scale043"], NOW, 100),
        {"ix_jobs_ready"},
    ),
    "dispatch: a queue's jobs in flight": (
        lambda uow: uow.dispatch.in_flight("default", NOW - timedelta(seconds=60)),
        {"ix_jobs_in_flight"},
    ),
    "dispatch: lost dispatches": (
        lambda uow: uow.dispatch.forget_lost(NOW - timedelta(seconds=60), 500),
        {"ix_jobs_in_flight"},
    ),
    "scheduler: lapsed leases": (
        lambda uow: uow.jobs.lapsed(NOW + timedelta(minutes=5), 100),
        {"ix_jobs_lease"},
    ),
    "scheduler: due deliveries": (
        lambda uow: uow.webhooks.due(NOW, NOW - timedelta(seconds=60), 500),
        {"ix_webhook_deliveries_due"},
    ),
    "deliveries in flight to an endpoint": (
        lambda uow: uow.webhooks.in_flight("whe_scale042", NOW),
        {"ix_webhook_deliveries_in_flight"},
    ),
    "an endpoint's deliveries": (
        lambda uow: uow.webhooks.delivery_page("whe_scale042", None, 21),
        {"ix_webhook_deliveries_endpoint_id_id"},
    ),
    "purge: finished jobs": (
        lambda uow: uow.jobs.purge_finished(NOW - timedelta(days=29), 500),
        {"ix_jobs_finished"},
    ),
    "purge: webhook events": (
        lambda uow: uow.webhooks.purge_events(NOW - timedelta(days=29), 500),
        {"ix_webhook_events_created_at"},
    ),
    "purge: idempotency records": (
        lambda uow: uow.records.purge_idempotency(NOW - timedelta(hours=23), 500),
        {"ix_idempotency_records_created_at"},
    ),
    "purge: audit events": (
        lambda uow: uow.records.purge_audit(NOW - timedelta(days=300), 500),
        {"ix_audit_events_at"},
    ),
    "audit page": (
        lambda uow: uow.keys.audit_page(TENANT, None, 21),
        {"ix_audit_events_tenant_id_id"},
    ),
    "idempotency lookup": (
        lambda uow: uow.session.get(IdempotencyRecord, (TENANT, "/v1/jobs", "key-job_x")),
        {"pk_idempotency_records"},
    ),
    "authenticate: key by hash": (
        lambda uow: uow.keys.by_hash("0" * 64),
        {"ix_api_keys_key_hash"},
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_each_hot_query_uses_its_index_at_scale(big: Container, case: str) -> None:
    use, expected = CASES[case]
    found = plans(big, in_a_transaction(big, use))
    assert found, "the query sent nothing"
    used = set().union(*(plan.indexes for plan in found))
    assert expected <= used, [(p.statement, p.indexes) for p in found]
    for plan in found:
        assert plan.whole <= SMALL, (plan.statement, plan.whole)


def test_the_metrics_queries_use_the_partial_indexes_at_scale(big: Container) -> None:
    found = plans(big, lambda: (big.metrics._read(), big.metrics._due_work()))
    used = set().union(*(plan.indexes for plan in found))
    assert {"ix_jobs_due", "ix_jobs_lease"} <= used, [(p.statement, p.indexes) for p in found]
    assert used & {"ix_webhook_deliveries_due", "ix_webhook_deliveries_in_flight"}
    for plan in found:
        assert plan.whole <= SMALL, (plan.statement, plan.whole)


def test_a_tenants_queue_figures_read_its_own_jobs_by_index_at_scale(big: Container) -> None:
    found = plans(big, lambda: big.queue_control.overview(TENANT))
    used = set().union(*(plan.indexes for plan in found))
    assert "ix_jobs_tenant_id_status_id" in used, [(p.statement, p.indexes) for p in found]
    for plan in found:
        assert plan.whole <= SMALL, (plan.statement, plan.whole)


def test_the_data_is_at_the_scale_the_plans_claim(big: Container) -> None:
    """The plans above mean something only if the tables are really that large."""
    found = plans(
        big, in_a_transaction(big, lambda uow: uow.jobs.page(TENANT, JobFilter(), None, 21))
    )
    with big.engine.connect() as connection:
        cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
        cursor.execute("SELECT reltuples FROM pg_class WHERE relname = 'jobs'")
        estimated = cursor.fetchone()[0]
    assert estimated >= 0.9 * scale.JOBS and found
