"""A database of Hopper at scale, generated in SQL: 1,000,000 jobs across 100 tenants, and every
other table a hot query scans at the size it has beside that many jobs (30 days of jobs kept,
24 hours of idempotency records, a webhook endpoint a tenant).

Used by the query-plan test and by the bench's list-page and /metrics figures. The database is
the caller's own (``own_database``), created in the shared cluster and dropped after; its tables
are unlogged while they are filled (their plans do not depend on it), so the load writes no WAL.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from tests import services

JOBS = 1_000_000
TENANTS = 100
DAYS = 30

# Of every 200 jobs: one queued, one running, four failed, two canceled, the rest succeeded.
_STATUS = """CASE
    WHEN g % 200 = 0 THEN 'queued' WHEN g % 200 = 1 THEN 'running'
    WHEN g % 50 = 2 THEN 'failed' WHEN g % 100 = 3 THEN 'canceled' ELSE 'succeeded' END"""
# Those that reference others first: a logged table may not reference an unlogged one.
_UNLOGGED = (
    "dispatch_shares",
    "concurrency_limits",
    "rate_limits",
    "rate_key_states",
    "schedule_runs",
    "schedules",
    "http_target_settings",
    "webhook_delivery_attempts",
    "webhook_deliveries",
    "webhook_events",
    "webhook_endpoints",
    "job_attempts",
    "jobs",
    "api_keys",
    "idempotency_records",
    "audit_events",
    "tenants",
)
FILL = [
    f"""INSERT INTO tenants (id, name, created_at)
        SELECT 'ten_scale' || lpad(t::text, 3, '0'), 'scale-' || t, now() - interval '{DAYS} days'
        FROM generate_series(1, {TENANTS}) t""",
    # Ids grow with g, as real ids grow with time; the newest job is g = JOBS.
    f"""INSERT INTO jobs (id, tenant_id, type, queue, status, priority, payload, attempts,
            attempts_total, max_attempts, timeout_seconds, metadata, run_at, created_at,
            started_at, finished_at, cancel_requested, current_attempt_id, lease_expires_at,
            published_at, version)
        SELECT 'job_' || lpad(g::text, 26, '0'),
            'ten_scale' || lpad((g % {TENANTS} + 1)::text, 3, '0'),
            (ARRAY['echo', 'sleep', 'fail', 'hash', 'stubborn'])[g % 5 + 1],
            CASE WHEN g % 5 = 1 THEN 'long' ELSE 'default' END,
            status, 'normal', '{{"message": "scale"}}', 1, 1, 3, 30, '{{}}',
            at, at,
            CASE WHEN status <> 'queued' THEN at + interval '10 ms' END,
            CASE WHEN status NOT IN ('queued', 'running') THEN at + interval '20 ms' END,
            false,
            CASE WHEN status = 'running' THEN 'att_' || lpad(g::text, 26, '0') END,
            CASE WHEN status = 'running' THEN now() + interval '30 seconds' END,
            CASE WHEN status = 'queued' AND g % 400 = 0 THEN NULL ELSE at END, 1
        FROM (SELECT g, {_STATUS} AS status,
                     now() - ({JOBS} - g) * interval '{DAYS * 86400 / JOBS} seconds' AS at
              FROM generate_series(1, {JOBS}) g) AS made""",
    """INSERT INTO job_attempts (id, job_id, number, status, started_at, finished_at, worker)
        SELECT 'att_' || substr(id, 5), id, 1,
            CASE WHEN status = 'canceled' THEN 'failed' ELSE status END,
            started_at, finished_at, 'celery@scale'
        FROM jobs WHERE status <> 'queued'""",
    f"""INSERT INTO api_keys (id, tenant_id, name, role, prefix, key_hash, created_at)
        SELECT 'key_scale' || lpad(k::text, 5, '0'),
            'ten_scale' || lpad((k % {TENANTS} + 1)::text, 3, '0'),
            'key ' || k, 'submitter', 'hop_scale', md5(k::text) || md5((-k)::text), now()
        FROM generate_series(1, {TENANTS * 10}) k""",
    f"""INSERT INTO webhook_endpoints (id, tenant_id, url, description, enabled,
            secret_ciphertext, created_at, updated_at)
        SELECT 'whe_scale' || lpad(t::text, 3, '0'),
            'ten_scale' || lpad(t::text, 3, '0'),
            'https://hooks.example.test/' || t, '', true, 'sealed', now(), now()
        FROM generate_series(1, {TENANTS}) t""",
    # One event a finished job of one job in ten (the tenants that subscribe), one delivery each.
    """INSERT INTO webhook_events (id, tenant_id, type, job_id, body, created_at)
        SELECT 'evt_' || substr(id, 5), tenant_id, 'job.' || status, id, '{}', finished_at
        FROM jobs WHERE finished_at IS NOT NULL AND right(id, 1) = '7'""",
    """INSERT INTO webhook_deliveries (id, tenant_id, endpoint_id, event_id, event_type,
            status, attempts, schedule_step, next_attempt_at, published_at, created_at,
            updated_at, version)
        SELECT 'dlv_' || substr(e.id, 5), e.tenant_id, 'whe_' || substr(e.tenant_id, 5), e.id,
            e.type,
            CASE WHEN right(e.id, 3) = '007' THEN 'pending' ELSE 'succeeded' END,
            1, 0,
            CASE WHEN right(e.id, 3) = '007' THEN e.created_at + interval '5 seconds' END,
            e.created_at, e.created_at, e.created_at, 1
        FROM webhook_events e""",
    # 24 hours of submissions with an Idempotency-Key: one in two of the last day's jobs.
    """INSERT INTO idempotency_records (tenant_id, route, key, request_hash, state,
            response_status, created_at, updated_at)
        SELECT tenant_id, '/v1/jobs', 'key-' || id, repeat('0', 64), 'done', 202,
            created_at, created_at
        FROM jobs WHERE created_at > now() - interval '1 day' AND right(id, 1) IN ('0', '2',
            '4', '6', '8')""",
    f"""INSERT INTO audit_events (id, tenant_id, at, action, target_type, target_id, details)
        SELECT 'aud_' || lpad(g::text, 26, '0'),
            'ten_scale' || lpad((g % {TENANTS} + 1)::text, 3, '0'),
            now() - (100000 - g) * interval '{365 * 86400 / 100_000} seconds',
            'job.cancel', 'job', 'job_x', '{{}}'
        FROM generate_series(1, 100000) g""",
    # A thousand keys a tenant with a limit, a rate and a next start (keys per customer account).
    *(
        f"""INSERT INTO {table} (tenant_id, key, {columns})
        SELECT 'ten_scale' || lpad((g % {TENANTS} + 1)::text, 3, '0'), 'key-' || g, {values}
        FROM generate_series(1, {TENANTS * 1000}) g"""
        for table, columns, values in (
            ("concurrency_limits", '"limit", updated_at', "2, now()"),
            ("rate_limits", "rate, updated_at", "'10/second', now()"),
            ("rate_key_states", "next_at", "now() - interval '1 minute'"),
        )
    ),
]


@contextmanager
def own_database(prefix: str) -> Iterator[str]:
    """A database created in the shared cluster for the caller alone, dropped after it (even if
    the caller fails). Yields its URL."""
    name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    admin = create_engine(
        make_url(services.DATABASE_URL).set(database="postgres"), isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(services.DATABASE_URL).set(database=name).render_as_string(False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def fill(engine: Engine) -> float:
    """Fill a migrated, empty database; returns the seconds it took."""
    started = time.monotonic()
    with engine.begin() as connection:
        for table in _UNLOGGED:
            connection.execute(text(f"ALTER TABLE {table} SET UNLOGGED"))
        connection.execute(text("SET LOCAL synchronous_commit = off"))
        for statement in FILL:
            connection.execute(text(statement))
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("ANALYZE"))
    return time.monotonic() - started
