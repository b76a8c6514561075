"""Fair dispatch on a real stack, asserted by the order of the claims (the attempts' start
times, the database's clock), not by wall time: one tenant's flood of 20,000 jobs neither
delays another tenant's jobs beyond the broker's window nor is drained before them, and two
backlogged tenants of weights 3 and 1 start jobs in that proportion."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

from sqlalchemy import Engine, text

from tests.e2e.fairness.conftest import PREFETCH, WINDOW
from tests.stack import Stack, wait_until

ECHO = {"type": "echo", "payload": {"message": "x"}}
FLOOD = 20_000
BATCH = 500


def submit_batches(stack: Stack, key: str, jobs: int) -> None:
    def one(_: int) -> None:
        answer = stack.request("POST", "/v1/jobs/batch", key, json={"jobs": [ECHO] * BATCH})
        assert answer.status_code == 202, answer.text

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(one, range(jobs // BATCH)))


def starts(db: Engine, tenants: list[str], since: datetime) -> list[tuple[str, datetime]]:
    """(tenant, start) of every first attempt of these tenants' jobs since ``since``, in the
    order they were claimed."""
    with db.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT j.tenant_id, a.started_at"
                " FROM job_attempts a JOIN jobs j ON j.id = a.job_id"
                " WHERE j.tenant_id = ANY(:tenants) AND a.started_at >= :since"
                " AND a.number = 1"
                " ORDER BY a.started_at, a.id"
            ),
            {"tenants": tenants, "since": since},
        ).all()
    return [(row[0], row[1]) for row in rows]


def count(db: Engine, sql: str, **params: object) -> int:
    with db.connect() as connection:
        return int(connection.execute(text(sql), params).scalar_one())


def test_a_flood_delays_another_tenant_by_the_window_alone_and_weights_share_the_queue(
    stack: Stack, db: Engine
) -> None:
    flood, single = stack.new_tenant(), stack.new_tenant()
    a, b = flood["tenant_id"], single["tenant_id"]
    submit_batches(stack, flood["submitter"], FLOOD)
    # The flood is being worked off: the window is full, the rest waits in the database.
    wait_until(
        lambda: (
            count(db, "SELECT count(*) FROM jobs WHERE tenant_id = :a AND status <> 'queued'", a=a)
            >= 500
        ),
        60,
        "the flood to be under way",
    )
    mine = []
    for _ in range(10):
        answer = stack.request("POST", "/v1/jobs", single["submitter"], json=ECHO)
        assert answer.status_code == 202, answer.text
        mine.append(answer.json())
    done = [stack.wait_for_job(job["id"], single["reader"], timeout=60) for job in mine]

    order = starts(db, [a, b], datetime.fromisoformat(mine[0]["created_at"]))
    for job, finished in zip(mine, done, strict=True):
        submitted = datetime.fromisoformat(job["created_at"])
        started = datetime.fromisoformat(finished["started_at"])
        overtook = sum(1 for tenant, at in order if tenant == a and submitted < at < started)
        assert overtook <= WINDOW + PREFETCH, (job["id"], overtook)
        print("OVERTOOK", overtook)
    last = max(datetime.fromisoformat(job["finished_at"]) for job in done)
    unstarted = count(
        db,
        "SELECT count(*) FROM jobs WHERE tenant_id = :a"
        " AND (started_at IS NULL OR started_at > :t)",
        a=a,
        t=last,
    )
    assert unstarted >= 1_000, f"the flood was nearly drained ({unstarted} left): a weak test"

    # Weights 3:1, both backlogged: B gets a backlog of its own, and A three times its share.
    stack.cli("tenants", "set-weight", a, "3")
    with db.connect() as connection:
        since = connection.execute(text("SELECT now()")).scalar_one()
    submit_batches(stack, single["submitter"], 1_500)
    wait_until(lambda: len(starts(db, [a, b], since)) >= WINDOW + 2_200, 120, "2,300 starts")
    stretch = starts(db, [a, b], since)[WINDOW + 200 :][:2_000]  # once B's backlog is in
    heavy = sum(1 for tenant, _ in stretch if tenant == a)
    light = len(stretch) - heavy
    assert light > 0 and 0.85 * 3 <= heavy / light <= 1.15 * 3, (heavy, light)
    assert count(db, "SELECT count(*) FROM jobs WHERE tenant_id = :b AND status = 'queued'", b=b)
    # the flood's rest goes, so that no later stack on this database inherits it
    with db.begin() as connection:
        connection.execute(
            text(
                "UPDATE jobs SET status = 'canceled', finished_at = now() "
                "WHERE tenant_id = ANY(:t) AND status = 'queued'"
            ),
            {"t": [a, b]},
        )
