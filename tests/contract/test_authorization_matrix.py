"""Who may do what: every route under `/v1`, for every kind of caller, gets exactly the answer
that the contract gives, in its order of precedence: no valid key (none, revoked, expired) 401;
a role too weak 403; otherwise the route's success, except that another tenant's admin finds
none of this tenant's resources (404) and works on its own tenant on collection routes.

`ROUTES` is the table; `test_the_table_is_the_apps_route_table` fails when the app has a route
that the table does not name, or the table names one that the app no longer has. Each case acts
on resources made for it alone, so a destructive route always meets a fresh one.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from api.app import create_app
from api.auth import PROTECTED_PREFIX
from domain.model import Role
from domain.settings import Settings
from hopper.bootstrap import bootstrap
from tests.contract.conftest import CONTRACT_ENV
from tests.factories import make_tenant
from tests.services import real_env

READER, SUBMITTER, ADMIN = Role.READER, Role.SUBMITTER, Role.ADMIN
JOBS = "/v1/jobs"
JOB = "/v1/jobs/<job_id:job_id>"
ENDPOINTS = "/v1/webhook-endpoints"
ENDPOINT = "/v1/webhook-endpoints/<endpoint_id>"
DELIVERY = f"{ENDPOINT}/deliveries/<delivery_id>"
SCHEDULES = "/v1/schedules"
SCHEDULE = "/v1/schedules/<schedule_id>"
CONCURRENCY = "/v1/concurrency-limits/<path:key>"
RATE = "/v1/rate-limits/<path:key>"

# (method, route as the app writes it) -> (the role it needs, its success status)
ROUTES: dict[tuple[str, str], tuple[Role, int]] = {
    ("POST", JOBS): (SUBMITTER, 202),
    ("GET", JOBS): (READER, 200),
    ("POST", f"{JOBS}/batch"): (SUBMITTER, 202),
    ("GET", JOB): (READER, 200),
    ("DELETE", JOB): (SUBMITTER, 204),
    ("GET", f"{JOB}/attempts"): (READER, 200),
    ("POST", f"{JOB}/cancel"): (SUBMITTER, 200),
    ("POST", f"{JOB}/retry"): (SUBMITTER, 202),
    ("GET", "/v1/job-types"): (READER, 200),
    ("POST", ENDPOINTS): (ADMIN, 201),
    ("GET", ENDPOINTS): (ADMIN, 200),
    ("GET", ENDPOINT): (ADMIN, 200),
    ("PATCH", ENDPOINT): (ADMIN, 200),
    ("DELETE", ENDPOINT): (ADMIN, 204),
    ("POST", f"{ENDPOINT}/rotate-secret"): (ADMIN, 200),
    ("POST", f"{ENDPOINT}/test"): (ADMIN, 202),
    ("GET", f"{ENDPOINT}/deliveries"): (ADMIN, 200),
    ("GET", DELIVERY): (ADMIN, 200),
    ("POST", f"{DELIVERY}/redeliver"): (ADMIN, 202),
    ("POST", "/v1/api-keys"): (ADMIN, 201),
    ("GET", "/v1/api-keys"): (ADMIN, 200),
    ("DELETE", "/v1/api-keys/<key_id>"): (ADMIN, 204),
    ("GET", "/v1/audit-events"): (ADMIN, 200),
    ("GET", "/v1/queues"): (READER, 200),
    ("POST", "/v1/queues/<name>/pause"): (ADMIN, 200),
    ("POST", "/v1/queues/<name>/resume"): (ADMIN, 200),
    ("POST", "/v1/http-target-secret"): (ADMIN, 200),
    ("GET", "/v1/http-target-allowlist"): (ADMIN, 200),
    ("PUT", "/v1/http-target-allowlist"): (ADMIN, 200),
    ("POST", SCHEDULES): (ADMIN, 201),
    ("GET", SCHEDULES): (READER, 200),
    ("GET", SCHEDULE): (READER, 200),
    ("PATCH", SCHEDULE): (ADMIN, 200),
    ("DELETE", SCHEDULE): (ADMIN, 204),
    ("GET", CONCURRENCY): (READER, 200),
    ("PUT", CONCURRENCY): (ADMIN, 200),
    ("DELETE", CONCURRENCY): (ADMIN, 204),
    ("GET", RATE): (READER, 200),
    ("PUT", RATE): (ADMIN, 200),
    ("DELETE", RATE): (ADMIN, 204),
}
# Routes that name something every tenant has (a queue): another tenant's admin acts on its own.
SHARED_NAMES = {"<name>"}
# Operations that make what they name in the caller's tenant: another tenant's admin makes its own.
OWN_NAMES = {("PUT", CONCURRENCY), ("PUT", RATE)}

NO_KEY, REVOKED, EXPIRED, OTHER_ADMIN = "no key", "revoked key", "expired key", "other admin"
CALLERS = (NO_KEY, REVOKED, EXPIRED, "reader", "submitter", "admin", OTHER_ADMIN)
RANK = {READER: 0, SUBMITTER: 1, ADMIN: 2}

# Endpoints made here are disabled: a worker fails their deliveries without sending anything.
ENDPOINT_BODY = {"url": "http://127.0.0.1:9/hooks", "enabled": False}
ECHO = {"type": "echo", "payload": {"message": "matrix"}}
# Schedules made here are disabled: no scheduler fires them.
SCHEDULE_BODY = {"cron": "0 0 1 1 *", "job": ECHO, "enabled": False}
BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("POST", JOBS): ECHO,
    ("POST", f"{JOBS}/batch"): {"jobs": [ECHO, ECHO]},
    ("POST", ENDPOINTS): ENDPOINT_BODY,
    ("PATCH", ENDPOINT): {"description": "changed"},
    ("POST", "/v1/api-keys"): {"name": "matrix", "role": "reader"},
    ("PUT", "/v1/http-target-allowlist"): {"hosts": ["10.0.0.5"]},
    ("POST", SCHEDULES): {"name": "matrix", **SCHEDULE_BODY},
    ("PATCH", SCHEDULE): {"catch_up": "none"},
    ("PUT", CONCURRENCY): {"limit": 3},
    ("PUT", RATE): {"rate": "10/second"},
}


def expected_status(caller: str, method: str, route: str) -> int:
    needed, success = ROUTES[(method, route)]
    if caller in (NO_KEY, REVOKED, EXPIRED):
        return 401
    role = ADMIN if caller == OTHER_ADMIN else Role(caller)
    if RANK[role] < RANK[needed]:
        return 403
    shared = any(n in route for n in SHARED_NAMES) or (method, route) in OWN_NAMES
    if caller == OTHER_ADMIN and "<" in route and not shared:
        return 404
    return success


@pytest.fixture(scope="module")
def matrix_app(migrated_database: str) -> Iterator[Flask]:
    container = bootstrap(Settings.from_env(real_env(**CONTRACT_ENV)))
    yield create_app(container)
    container.engine.dispose()


@pytest.fixture(scope="module")
def keys(matrix_app: Flask) -> dict[str, str | None]:
    """The key each kind of caller presents (None: no Authorization header)."""
    access = matrix_app.extensions["hopper"].access
    tenant, other = make_tenant(access), make_tenant(access)
    revoked = access.create_key(tenant.tenant_id, "revoked", ADMIN)
    answer = matrix_app.test_client().delete(
        f"/v1/api-keys/{revoked.record.id}", headers=tenant.headers("admin")
    )
    assert answer.status_code == 204
    past = datetime.now(UTC) - timedelta(minutes=1)
    expired = access.create_key(tenant.tenant_id, "expired", ADMIN, past)
    return {
        NO_KEY: None,
        REVOKED: revoked.secret,
        EXPIRED: expired.secret,
        "reader": tenant.reader,
        "submitter": tenant.submitter,
        "admin": tenant.admin,
        OTHER_ADMIN: other.admin,
    }


class Fresh:
    """Resources of the tenant under test, made anew for each case."""

    def __init__(self, client: FlaskClient, keys: dict[str, str | None]) -> None:
        self.client = client
        self.admin = {"Authorization": f"Bearer {keys['admin']}"}
        self.submitter = {"Authorization": f"Bearer {keys['submitter']}"}

    def _made(self, method: str, path: str, headers: dict[str, str], **kwargs: Any) -> Any:
        answer = self.client.open(path, method=method, headers=headers, **kwargs)
        assert answer.status_code < 300, f"{method} {path}: {answer.status_code} {answer.text}"
        return answer.get_json()

    def job(self, canceled: bool) -> str:
        later = (datetime.now(UTC) + timedelta(days=1)).isoformat()
        job_id = str(self._made("POST", JOBS, self.submitter, json={**ECHO, "run_at": later})["id"])
        if canceled:
            self._made("POST", f"{JOBS}/{job_id}/cancel", self.submitter)
        return job_id

    def endpoint(self) -> str:
        return str(self._made("POST", ENDPOINTS, self.admin, json=ENDPOINT_BODY)["id"])

    def delivery(self, endpoint_id: str) -> str:
        self._made("POST", f"{ENDPOINTS}/{endpoint_id}/test", self.admin)
        page = self._made("GET", f"{ENDPOINTS}/{endpoint_id}/deliveries", self.admin)
        return str(page["data"][0]["id"])

    def api_key(self) -> str:
        body = {"name": "matrix-target", "role": "reader"}
        return str(self._made("POST", "/v1/api-keys", self.admin, json=body)["id"])

    def schedule(self) -> str:
        body = {"name": f"matrix-{uuid.uuid4().hex}", **SCHEDULE_BODY}
        return str(self._made("POST", SCHEDULES, self.admin, json=body)["id"])

    def key_limit(self, kind: str) -> str:
        """A key of the tenant's with a limit (``concurrency-limits``) or rate (``rate-limits``)."""
        key = f"matrix/{uuid.uuid4().hex}"
        body = {"limit": 2} if kind == "concurrency-limits" else {"rate": "5/second"}
        self._made("PUT", f"/v1/{kind}/{key}", self.admin, json=body)
        return key

    def path(self, route: str, method: str = "GET") -> str:
        ids: dict[str, str] = {}
        if "job_id>" in route:  # a retry, and a delete, need a finished job
            ids["job_id"] = self.job(canceled=route.endswith("/retry") or method == "DELETE")
        if "<endpoint_id>" in route:
            ids["endpoint_id"] = self.endpoint()
        if "<delivery_id>" in route:
            ids["delivery_id"] = self.delivery(ids["endpoint_id"])
        if "<key_id>" in route:
            ids["key_id"] = self.api_key()
        if "<schedule_id>" in route:
            ids["schedule_id"] = self.schedule()
        if "<name>" in route:
            ids["name"] = "long"  # every tenant's; the jobs made here wait in `default`
        if "<path:key>" in route:
            ids["key"] = self.key_limit(route.split("/")[2])
        return re.sub(r"<(?:\w+:)?(\w+)>", lambda match: ids[match.group(1)], route)


def test_the_table_is_the_apps_route_table(matrix_app: Flask) -> None:
    in_app = {
        (method, rule.rule)
        for rule in matrix_app.url_map.iter_rules()
        if rule.rule == PROTECTED_PREFIX or rule.rule.startswith(PROTECTED_PREFIX + "/")
        for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}
    }
    missing_from_table = sorted(in_app - set(ROUTES))
    gone_from_app = sorted(set(ROUTES) - in_app)
    assert (missing_from_table, gone_from_app) == ([], [])


def test_the_document_names_the_role_of_each_operation(matrix_app: Flask) -> None:
    """`x-required-role`, which clients (and the contract tests) read, says what the table says."""
    spec = matrix_app.test_client().get("/openapi.json").get_json()
    documented = {
        (method.upper(), path): operation.get("x-required-role")
        for path, item in spec["paths"].items()
        if path.startswith(PROTECTED_PREFIX)
        for method, operation in item.items()
        if method != "parameters"
    }
    table = {
        (method, re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", route)): str(role)
        for (method, route), (role, _) in ROUTES.items()
    }
    assert documented == table


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize(
    ("method", "route"), [pytest.param(*key, id=" ".join(key)) for key in ROUTES]
)
def test_each_caller_gets_the_contracts_answer(
    matrix_app: Flask, keys: dict[str, str | None], method: str, route: str, caller: str
) -> None:
    client = matrix_app.test_client()
    path = Fresh(client, keys).path(route, method)
    key = keys[caller]
    headers = {} if key is None else {"Authorization": f"Bearer {key}"}
    answer = client.open(path, method=method, headers=headers, json=BODIES.get((method, route)))

    expected = expected_status(caller, method, route)
    assert answer.status_code == expected, f"{method} {path} as {caller}: {answer.text}"
    if expected >= 400:
        problem = answer.get_json()
        assert answer.mimetype == "application/problem+json"
        assert problem["status"] == expected
        assert (
            problem["type"]
            == {
                401: "urn:hopper:problem:unauthenticated",
                403: "urn:hopper:problem:forbidden",
                404: "urn:hopper:problem:not-found",
            }[expected]
        )
    if expected == 401:
        assert answer.headers["WWW-Authenticate"].startswith("Bearer")
    if caller == OTHER_ADMIN and expected < 300:
        owner = keys["admin"]
        for made in _ids(answer.get_json()):
            assert _sees(client, key, made), f"{made} is not in the caller's own tenant"
            assert not _sees(client, owner, made), f"{made} is visible to another tenant"


def _ids(body: Any) -> set[str]:
    items = body.get("data", [body]) if isinstance(body, dict) else []
    return {item["id"] for item in items if isinstance(item, dict) and "id" in item}


def _sees(client: FlaskClient, key: str | None, resource_id: str) -> bool:
    headers = {"Authorization": f"Bearer {key}"}
    kind = resource_id.split("_", 1)[0]
    if kind in ("job", "whe", "sch"):
        collection = {"job": JOBS, "whe": ENDPOINTS, "sch": SCHEDULES}[kind]
        return client.get(f"{collection}/{resource_id}", headers=headers).status_code == 200
    listing = {"key": "/v1/api-keys", "aud": "/v1/audit-events"}[kind]
    return resource_id in _ids(client.get(f"{listing}?limit=100", headers=headers).get_json())
