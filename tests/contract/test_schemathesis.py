"""The OpenAPI document tells the truth: schemathesis reads the live `/openapi.json` of a running
Hopper and sends every operation generated requests (valid and invalid), once per role (a role
too weak for an operation gets a 403 whatever it sends: 3 cases there, 25 elsewhere; the
coverage phase's boundary cases run once, as the weakest role that may call it), and each
answer must be no 5xx, a documented status with a documented content type, carry the documented
headers, and match the documented schema.

Hermetic by construction. The stack runs with `HOPPER_OUTBOUND_ALLOWED_NETWORKS=127.0.0.0/8`, so
the outbound guard never lets a delivery leave loopback; but the guard resolves a URL's host name
when an endpoint is created or changed, and a generated name would be a DNS query leaving the
machine. So before each request, `hermetic_url` points any webhook URL that the guard would get as
far as resolving (one in the documented form, which the API checks first) at the test's own
receiver on 127.0.0.1; every other generated URL is sent as it is, for the API to refuse on its
form alone.

Every check schemathesis has runs, `positive_data_acceptance` and `negative_data_rejection`
included: the document must accept what the API accepts and refuse what it refuses. One rule
JSON Schema cannot write is "in the future" (a key's `expires_at`): the document says it in
words, and `expiry_ahead` moves a generated expiry that has passed to a day ahead, so that the
checks see the rest of the body as generated.
`test_generated_urls_reach_only_the_receiver` holds that rule to it with a resolver that fails
the test if it is ever called.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import hypothesis
import jsonschema_rs
import pytest
import schemathesis
from hypothesis import strategies as st
from schemathesis.core.parameters import ParameterLocation

from api.app import create_app
from api.idempotency import HEADER as IDEMPOTENCY_KEY
from api.schedules.cron_form import CRON_PATTERN
from api.webhooks.schemas import WEBHOOK_URL_PATTERN
from domain.job_types.http.payload import reserved_reason
from domain.model import Role
from domain.schedules.clock import cron_problem
from domain.settings import Settings
from hopper.bootstrap import bootstrap
from tests.contract.conftest import ROLES, Contract
from tests.services import real_env
from workers.outbound.guard import OutboundGuard, OutboundPolicy, Refused

EXAMPLES_PER_OPERATION = 25
FORBIDDEN_EXAMPLES = 3  # an operation the role may not call
SHARED_EXAMPLES = 5  # an operation a weaker role may call too (it sends the full set)
# The document itself, the page that renders it, and Flask's static files.
NOT_DOCUMENTED = {"api-docs", "swagger_ui", "static"}
MAX_URL = 2048  # a webhook URL's documented maxLength
# A request refused by the web server for its size (a request line or headers too long) is
# rejected too: what schemathesis expects of a negative case, and these two besides.
REJECTED = [
    *(["400", "401", "403", "404", "405", "406", "409", "415", "422", "428", "429", "5xx"]),
    "414",
    "431",
]
REQUEST_TIMEOUT = 45  # above the longest long-poll (`?wait=30`)

# Operations whose success consumes the resource: each example that names the seeded resource
# gets a fresh one instead, so later examples still find something to act on.
FRESH = {
    ("DELETE", "/v1/webhook-endpoints/{endpoint_id}"): ("endpoint_id", "endpoint"),
    ("DELETE", "/v1/api-keys/{key_id}"): ("key_id", "api_key"),
    ("POST", "/v1/jobs/{job_id}/cancel"): ("job_id", "queued_job"),
    ("POST", "/v1/jobs/{job_id}/retry"): ("job_id", "canceled_job"),
    ("DELETE", "/v1/jobs/{job_id}"): ("job_id", "canceled_job"),
    ("DELETE", "/v1/schedules/{schedule_id}"): ("schedule_id", "schedule"),
    ("DELETE", "/v1/concurrency-limits/{key}"): ("key", "concurrency_key"),
    ("DELETE", "/v1/rate-limits/{key}"): ("key", "rate_key"),
}


def hermetic_url(value: Any, netloc: str) -> Any:
    """`value` with its host and port replaced by `netloc` if it has the documented form, the
    only form that reaches the outbound guard; otherwise `value` unchanged, for the API to refuse
    on its form alone (a negative case stays negative)."""
    if (
        not isinstance(value, str)
        or len(value) > MAX_URL
        or not re.fullmatch(WEBHOOK_URL_PATTERN, value)
    ):
        return value
    parts = urlsplit(value)
    pointed = urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
    # A longer host than the generated one may push a valid URL over the limit: keep it valid.
    return pointed if len(pointed) <= MAX_URL else f"{parts.scheme}://{netloc}/"


def expiry_ahead(value: Any) -> Any:
    """`value`, or a day from now when it is a date-time that has passed."""
    if not isinstance(value, str):
        return value
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return value
    if when.tzinfo is None:
        return value
    now = datetime.now(UTC)
    try:
        passed = when <= now
    except OverflowError:
        return value
    return (now + timedelta(days=1)).isoformat() if passed else value


def _move_expiry_ahead(case: schemathesis.Case) -> None:
    if isinstance(case.body, dict) and "expires_at" in case.body:
        case.body["expires_at"] = expiry_ahead(case.body["expires_at"])


def _metadata_keys_as_documented(case: schemathesis.Case) -> None:
    """The document bounds metadata keys with `propertyNames`, a JSON Schema keyword that came
    after draft 4, the dialect schemathesis reads an OpenAPI 3.0 document in; so it generates
    keys the document refuses. Each is made one it takes: no NUL, 1 to 40 characters."""
    if not isinstance(case.body, dict):
        return
    jobs = case.body.get("jobs")
    for job in [case.body, case.body.get("job"), *(jobs if isinstance(jobs, list) else [])]:
        metadata = job.get("metadata") if isinstance(job, dict) else None
        if isinstance(metadata, dict):
            job["metadata"] = {
                (key.replace("\x00", "") or "k")[:40]: value for key, value in metadata.items()
            }


def _http_payloads_as_documented(case: schemathesis.Case) -> None:
    """What an `http` payload's description says but its schema cannot: the headers Hopper sets
    itself, a name given twice ignoring case (or in both maps), a body with GET, and no NUL in
    the text of a body (any JSON, so its schema has no `pattern` to say it; a body with NUL is
    malformed, as the document says of every request). A generated payload that breaks one of
    them has it taken out; the unit tests of the type and of the JSON reader refuse each."""
    if not isinstance(case.body, dict):
        return
    jobs = case.body.get("jobs")
    for job in [case.body, case.body.get("job"), *(jobs if isinstance(jobs, list) else [])]:
        payload = job.get("payload") if isinstance(job, dict) else None
        if not (isinstance(job, dict) and job.get("type") == "http" and isinstance(payload, dict)):
            continue
        seen: set[str] = set()
        for field in ("headers", "secret_headers"):
            if isinstance(payload.get(field), dict):
                payload[field] = _headers_hopper_takes(payload[field], seen)
        if payload.get("method") == "GET":
            payload.pop("body", None)
        elif "body" in payload:
            payload["body"] = _without_nul(payload["body"])


def _without_nul(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace("\x00", "")
    if isinstance(value, list):
        return [_without_nul(item) for item in value]
    if isinstance(value, dict):
        return {_without_nul(key): _without_nul(item) for key, item in value.items()}
    return value


def _headers_hopper_takes(headers: dict[Any, Any], seen: set[str]) -> dict[Any, Any]:
    kept = {}
    for name, value in headers.items():
        lowered = name.lower() if isinstance(name, str) else name
        if lowered in seen or reserved_reason(lowered):
            continue
        seen.add(lowered)
        kept[name] = value
    return kept


def cron_as_documented(value: Any) -> Any:
    """`value`, or a cron that runs, when it has the documented form but breaks a rule that the
    document says in words only (a range runs low to high; the days fall in some month)."""
    if not isinstance(value, str) or not re.fullmatch(CRON_PATTERN, value):
        return value
    return value if cron_problem(value) is None else "*/5 * * * *"


def _cron_as_documented(case: schemathesis.Case) -> None:
    if isinstance(case.body, dict) and "cron" in case.body:
        case.body["cron"] = cron_as_documented(case.body["cron"])


def _new_request(case: schemathesis.Case) -> None:
    """Each case is a request of its own: a well-formed Idempotency-Key gets a suffix unique to
    the case, so that two examples never share one (a key reused with another body is a 422
    that the document cannot foresee; replays have tests of their own)."""
    key = (case.headers or {}).get(IDEMPOTENCY_KEY)
    if isinstance(key, str) and re.fullmatch(r"[ -~]{1,222}", key):
        case.headers[IDEMPOTENCY_KEY] = f"{key}-{uuid.uuid4().hex}"


# The headers that frame the body, which the HTTP client writes for the body it sends.
FRAMING = {"content-length", "transfer-encoding"}


def _framing_left_to_the_client(case: schemathesis.Case) -> None:
    """A generated `Transfer-Encoding` or `Content-Length` would describe a body other than the
    one sent: the web server answers such a request itself, before the API (a coding other than
    chunked is its documented 501; a length longer than the body waits for the rest). The
    e2e tests send both on their own (tests/e2e/test_hostile_inputs.py the codings,
    tests/e2e/test_front_door.py the lengths); here the client frames the body it sends."""
    for name in [name for name in case.headers or {} if name.lower() in FRAMING]:
        del case.headers[name]


def _negative_query_sent(case: schemathesis.Case) -> None:
    """A negative query parameter whose value has no query-string form of its own (none, a
    list or an object) would vanish from the URL or become something else in it (an object
    is sent as its keys: `{"jÕ": 1}` becomes `type=jÕ`, a valid filter), and the API would
    rightly answer the request; schemathesis checks only that the query as a whole is not
    empty. Each such value is sent as the empty string instead, which every query parameter of
    the API refuses."""
    if case.meta is None or not case.meta.is_negative_at(ParameterLocation.QUERY):
        return
    for name, value in (case.query or {}).items():
        if value is None or isinstance(value, list | dict | tuple):
            case.query[name] = ""


def _make_hermetic(case: schemathesis.Case, netloc: str) -> None:
    if isinstance(case.body, dict) and "url" in case.body:
        case.body["url"] = hermetic_url(case.body["url"], netloc)


def _use_fresh_resources(case: schemathesis.Case, contract: Contract) -> None:
    fresh = FRESH.get((case.method.upper(), case.path))
    if fresh is None or not case.path_parameters:
        return
    name, factory = fresh
    if case.path_parameters.get(name) in contract.seeds.for_parameter(name):
        case.path_parameters[name] = getattr(contract.tenant, factory)()


@pytest.fixture(scope="module", params=ROLES)
def role(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def operations_by_standing(role: str, spec: dict[str, Any]) -> tuple[list[str], list[str]]:
    """The operations that `role` may not call, and those that a weaker role may call too
    (each operation says its role in `x-required-role`)."""
    forbidden, shared = [], []
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            required = operation.get("x-required-role") if method != "parameters" else None
            if required is None:
                continue
            name = f"{method.upper()} {path}"
            if not Role(role).allows(Role(required)):
                forbidden.append(name)
            elif required != role:
                shared.append(name)
    return forbidden, shared


@pytest.fixture(scope="module")
def contract_schema(contract: Contract, role: str) -> schemathesis.BaseSchema:
    spec = contract.stack.request("GET", "/openapi.json").json()
    forbidden, shared = operations_by_standing(role, spec)
    config = schemathesis.Config.from_dict(
        {
            "generation": {"max-examples": EXAMPLES_PER_OPERATION, "database": "none"},
            "phases": {"stateful": {"enabled": False}},
            "checks": {"negative_data_rejection": {"expected-statuses": REJECTED}},
            # A role too weak gets the same 403 whatever it sends: a few cases show that the
            # answer is the documented one (the authorization matrix covers each route).
            "operations": [
                *(
                    [
                        {
                            "include-name": forbidden,
                            "generation": {"max-examples": FORBIDDEN_EXAMPLES},
                            "phases": {"coverage": {"enabled": False}},
                        }
                    ]
                    if forbidden
                    else []
                ),
                # An operation's cases are answered by the same code whoever sends them, once
                # past the role check: the weakest role that may call it sends them all (the
                # coverage phase's boundaries and the generated examples), a stronger one a few
                # generated ones, to show its answers are the documented ones too.
                *(
                    [
                        {
                            "include-name": shared,
                            "generation": {"max-examples": SHARED_EXAMPLES},
                            "phases": {"coverage": {"enabled": False}},
                        }
                    ]
                    if shared
                    else []
                ),
                # A change to a schedule takes the fields of its creation, each optional and
                # built by the same code (api/schedules/schemas.py), the job among them: the
                # coverage phase's boundaries of each run at POST /v1/schedules (and of the job
                # at POST /v1/jobs), where they are 456 cases; at PATCH the optional fields'
                # combinations make them 1,215. The change sends generated cases, and the
                # rules of its own (a cadence replaced, both refused) have tests in
                # tests/integration/test_schedules_api.py.
                {
                    "include-name": ["PATCH /v1/schedules/{schedule_id}"],
                    "phases": {"coverage": {"enabled": False}},
                },
            ],
        }
    )
    loaded = schemathesis.openapi.from_url(
        f"{contract.stack.base_url}/openapi.json", config=config, timeout=10
    )
    seeds = contract.seeds

    @loaded.hook
    def flatmap_path_parameters(
        ctx: schemathesis.HookContext, parameters: dict[str, Any] | None
    ) -> st.SearchStrategy:
        """Each path parameter is a real id of the tenant, or the generated value (shrinks
        towards the real one). A value generated to break the parameter's schema stays as it
        is: a negative case must reach the API as schemathesis made it."""
        if not parameters:
            return st.just(parameters)
        assert ctx.operation is not None
        schemas = {p.name: p.definition["schema"] for p in ctx.operation.path_parameters}
        return st.fixed_dictionaries(
            {
                name: st.sampled_from([*seeds.for_parameter(name), value])
                if jsonschema_rs.validator_for(schemas.get(name, {})).is_valid(value)
                else st.just(value)
                for name, value in parameters.items()
            }
        )

    return loaded


schema = schemathesis.pytest.from_fixture("contract_schema")


@schema.parametrize()
def test_every_answer_is_the_documented_one(
    case: schemathesis.Case, contract: Contract, role: str
) -> None:
    _make_hermetic(case, f"127.0.0.1:{contract.receiver.port}")
    _move_expiry_ahead(case)
    _negative_query_sent(case)
    _new_request(case)
    _framing_left_to_the_client(case)
    _metadata_keys_as_documented(case)
    _cron_as_documented(case)
    _http_payloads_as_documented(case)
    _use_fresh_resources(case, contract)
    case.call_and_validate(
        headers={"Authorization": f"Bearer {contract.tenant.keys[role]}"},
        timeout=REQUEST_TIMEOUT,
    )


def test_the_document_covers_every_route(contract: Contract) -> None:
    """What the test above cannot reach, it cannot check: every route the app serves is in the
    live document, apart from the document itself, its page and Flask's static files."""
    spec = contract.stack.request("GET", "/openapi.json").json()
    documented = {
        (method.upper(), path)
        for path, item in spec["paths"].items()
        for method in item
        if method != "parameters"
    }
    app = create_app(bootstrap(Settings.from_env(real_env())))
    served = {
        (method, re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule))
        for rule in app.url_map.iter_rules()
        if rule.endpoint.split(".")[0] not in NOT_DOCUMENTED
        for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}
    }
    app.extensions["hopper"].engine.dispose()
    assert sorted(served - documented) == []
    assert sorted(documented - served) == []


def test_every_query_parameter_refuses_the_empty_string(contract: Contract) -> None:
    """What `_negative_query_sent` relies on: `name=` is a 422 at `query.name` everywhere."""
    spec = contract.stack.request("GET", "/openapi.json").json()
    seeds = contract.seeds
    asked = []
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            for parameter in [] if method == "parameters" else operation.get("parameters", []):
                if parameter["in"] != "query":
                    continue
                name = parameter["name"]
                url = re.sub(r"{(\w+)}", lambda m: seeds.for_parameter(m.group(1))[0], path)
                answer = contract.stack.request(
                    method.upper(), url, contract.tenant.keys["admin"], params={name: ""}
                )
                asked.append((method, path, name))
                assert answer.status_code == 422, (method, path, name, answer.text)
                assert f"query.{name}" in answer.text, (method, path, name, answer.text)
    assert len(asked) >= 10  # the list filters, cursors, limits and `wait`


def _never_resolve(host: str, port: int) -> list[str]:
    raise AssertionError(f"the guard tried to resolve {host!r}")


URLISH = st.builds(
    "{}{}{}{}".format,
    st.sampled_from(["http://", "https://", "HTTP://", " http://", "ftp://", "http:/", ""]),
    st.sampled_from(["", "user:pw@", "@", "[::1]", "[", "xn--", "127.0.0.1", "localhost"]),
    st.text(max_size=30),
    st.sampled_from(["", ":80", ":0", ":99999", ":x", "/path?q#f"]),
)


@hypothesis.settings(max_examples=500, database=None, deadline=None)
@hypothesis.given(value=st.one_of(st.text(), URLISH))
def test_generated_urls_reach_only_the_receiver(value: str) -> None:
    sent = hermetic_url(value, "127.0.0.1:4321")
    if not re.fullmatch(WEBHOOK_URL_PATTERN, sent):
        return  # refused by the API's form check, before the guard sees it
    settings = Settings.from_env(real_env())
    guard = OutboundGuard(OutboundPolicy.from_settings(settings), resolve=_never_resolve)
    try:
        destination = guard.destination(sent)
    except Refused:
        return
    assert (destination.addresses, destination.port) == (("127.0.0.1",), 4321)
