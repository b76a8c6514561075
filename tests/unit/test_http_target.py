"""The ``http`` job type: its payload rules, the signed request it builds, and how it reads an
answer (a result, a retry after a delay, or a failure now)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from domain import queues
from domain.context import CancellationToken, JobCanceled, JobContext, PermanentFailure, RetryLater
from domain.errors import FieldError
from domain.job_types.http import JOB_TYPE, outcome, request_for, retry_after
from domain.job_types.http.answer import EXCERPT_CHARS
from domain.ports import MAX_ANSWER_BODY_BYTES, TargetAnswer, TargetRequest
from domain.webhooks.signing import new_secret

URL = "https://target.example/hooks"
SECRET_VALUE = "Bearer s3cr3t-token-value"
NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


@dataclass
class FakeTargets:
    """Answers every request with ``answer`` and records what was sent."""

    secrets: list[str] = field(default_factory=lambda: [new_secret()])
    answer: TargetAnswer = field(default_factory=lambda: answered(200, b"ok"))
    sent: list[tuple[str, TargetRequest]] = field(default_factory=list)
    asked_for: list[str] = field(default_factory=list)

    def signing_secrets(self, tenant_id: str) -> list[str]:
        self.asked_for.append(tenant_id)
        return list(self.secrets)

    def send(
        self, tenant_id: str, request: TargetRequest, cancellation: CancellationToken
    ) -> TargetAnswer:
        self.sent.append((tenant_id, request))
        return self.answer


def answered(
    status: int | None,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
    truncated: bool = False,
    **rest: Any,
) -> TargetAnswer:
    return TargetAnswer(status, headers or {}, body, truncated, **rest)


def context(
    http: FakeTargets | None = None, attempt: int = 1, deadline: datetime | None = None
) -> JobContext:
    return JobContext(
        job_id="job_01HX",
        attempt=attempt,
        deadline=deadline or datetime.now(UTC) + timedelta(seconds=90),
        tenant_id="ten_1",
        http=http,
    )


def payload(**given: Any) -> dict[str, Any]:
    return {"url": URL, **given}


def loaded(**given: Any) -> dict[str, Any]:
    return JOB_TYPE.load_payload(payload(**given))


def errors(**given: Any) -> list[FieldError]:
    return JOB_TYPE.validate_payload(payload(**given))


def only_error(**given: Any) -> FieldError:
    found = errors(**given)
    assert len(found) == 1, found
    return found[0]


def build(ctx: JobContext | None = None, secrets: list[str] | None = None, **given: Any):
    ctx = ctx or context()
    return request_for(loaded(**given), ctx, secrets or [new_secret()], datetime.now(UTC))


# -- the type --------------------------------------------------------------------------------


def test_the_type_and_its_defaults() -> None:
    assert JOB_TYPE.name == "http"
    assert JOB_TYPE.queue == queues.HTTP == "http"
    assert JOB_TYPE.default_timeout_seconds == 90
    assert JOB_TYPE.default_max_attempts == 5
    assert JOB_TYPE.description.endswith(".")


def test_a_minimal_payload_loads_with_its_defaults() -> None:
    assert loaded() == {
        "url": URL,
        "method": "POST",
        "headers": {},
        "secret_headers": {},
        "body": None,
        "timeout_seconds": 30,
    }


# -- url -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "https://target.example/hooks",
        "http://target.example:8080/a/b?c=d&e=%20",
        "https://203.0.113.9/",
        "https://[2001:db8::1]:8443/x",
        "https://Target.Example/",
        "https://target.example" + "/a" * 1000,
    ],
)
def test_urls_accepted(url: str) -> None:
    assert JOB_TYPE.validate_payload({"url": url}) == []


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("ftp://target.example/", "http or https"),
        ("//target.example/", "http or https"),
        ("/relative/path", "http or https"),
        ("target.example", "http or https"),
        ("https:///nohost", "host"),
        ("https://user:pw@target.example/", "user name or password"),
        ("https://user@target.example/", "user name or password"),
        ("https://target.example/#top", "fragment"),
        ("https://target.example/a#", "fragment"),
        ("https://target.example:99999/", "Not a valid URL"),
        ("https://target.example/a b", "spaces or control"),
        ("https://target.example/\r\nx", "spaces or control"),
        ("https://target.example/" + "a" * 2030, "2048"),
        ("HTTPS://target.example/", "Not an absolute http(s) URL"),
        ("https://bücher.example/", "punycode"),
    ],
)
def test_urls_refused(url: str, words: str) -> None:
    error = JOB_TYPE.validate_payload({"url": url})
    assert [e.field for e in error] == ["payload.url"]
    assert words in error[0].message


@pytest.mark.parametrize("given", [{}, {"url": None}, {"url": 7}, {"url": ["https://a.b/"]}])
def test_url_is_a_required_string(given: dict[str, Any]) -> None:
    assert [e.field for e in JOB_TYPE.validate_payload(given)] == ["payload.url"]


def test_an_unknown_field_is_refused() -> None:
    assert only_error(follow_redirects=True).field == "payload.follow_redirects"


# -- method ----------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "PATCH", "DELETE"])
def test_methods_accepted(method: str) -> None:
    assert errors(method=method) == []
    assert loaded(method=method)["method"] == method


@pytest.mark.parametrize("method", ["get", "Post", "HEAD", "OPTIONS", "", 1, None])
def test_methods_refused(method: Any) -> None:
    assert only_error(method=method).field == "payload.method"


# -- headers ---------------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["headers", "secret_headers"])
def test_headers_accepted(where: str) -> None:
    given = {
        "X-Trace": "abc",
        "Authorization": "Bearer x",
        "Accept": "*/*",
        "x-a!#$%&'*+.^_`|~": "",
    }
    assert errors(**{where: given}) == []
    assert loaded(**{where: given})[where] == given


def test_header_values_may_hold_tabs_spaces_and_latin_1() -> None:
    assert errors(headers={"X-A": "a\tb c ~ é ÿ"}) == []


def test_header_limits_at_the_edge_are_accepted() -> None:
    given = {"X" * 100: "v" * 8192, **{f"X-{i}": "v" for i in range(49)}}
    assert errors(headers=given) == []


@pytest.mark.parametrize(
    ("headers", "words"),
    [
        ({"Host": "other.example"}, "'Host' may not be given"),
        ({"HOST": "other.example"}, "'HOST' may not be given"),
        ({"Connection": "close"}, "hop-by-hop"),
        ({"Keep-Alive": "1"}, "hop-by-hop"),
        ({"proxy-connection": "1"}, "hop-by-hop"),
        ({"TE": "trailers"}, "hop-by-hop"),
        ({"Trailer": "x"}, "hop-by-hop"),
        ({"Transfer-Encoding": "chunked"}, "hop-by-hop"),
        ({"Upgrade": "h2c"}, "hop-by-hop"),
        ({"Proxy-Authenticate": "x"}, "hop-by-hop"),
        ({"Proxy-Authorization": "x"}, "hop-by-hop"),
        ({"Content-Length": "3"}, "'Content-Length' may not be given"),
        ({"Hopper-Job-Id": "x"}, "Hopper sets it"),
        ({"hopper-anything": "x"}, "Hopper sets it"),
        ({"Webhook-Id": "x"}, "Hopper sets it"),
        ({"webhook-timestamp": "1"}, "Hopper sets it"),
        ({"User-Agent": "mine/1.0"}, "Hopper sets it"),
        ({"WEBHOOK-SIGNATURE": "v1,x"}, "Hopper sets it"),
        ({"": "x"}, "not a valid HTTP field name"),
        ({"Bad Name": "x"}, "'Bad Name' is not a valid HTTP field name"),
        ({"X:Y": "x"}, "not a valid HTTP field name"),
        ({"X-É": "x"}, "not a valid HTTP field name"),
        ({"X" * 101: "x"}, "longer than 100"),
        ({"X-A": "v" * 8193}, "longer than 8 KiB"),
        ({"X-A": "a\rb"}, "no CR, LF, NUL"),
        ({"X-A": "a\nb"}, "no CR, LF, NUL"),
        ({"X-A": "a\x00b"}, "no CR, LF, NUL"),
        ({"X-A": "a\x7fb"}, "control characters"),
        ({"X-A": "snow ☃"}, "Latin-1"),
        ({"X-A": 1}, "must be a string"),
        ({"X-A": None}, "must be a string"),
        ({"X-A": True}, "must be a string"),
        ({"X-A": "1", "x-a": "2"}, "'x-a' is given more than once"),
        ({f"X-{i}": "v" for i in range(51)}, "At most 50"),
    ],
)
@pytest.mark.parametrize("where", ["headers", "secret_headers"])
def test_headers_refused(where: str, headers: dict[str, Any], words: str) -> None:
    error = only_error(**{where: headers})
    assert error.field == f"payload.{where}"
    assert words in error.message


@pytest.mark.parametrize("given", [[], "X-A: 1", 1, None])
def test_headers_must_be_an_object(given: Any) -> None:
    assert only_error(headers=given).field == "payload.headers"


def test_a_refused_header_value_is_never_quoted() -> None:
    refused = {
        "Proxy-Authorization": SECRET_VALUE,
        "X-B": SECRET_VALUE + "\n",
        "X-C": 9 * 1024 * "z",
    }
    error = only_error(secret_headers=refused)
    assert "Proxy-Authorization" in error.message and "X-B" in error.message
    assert SECRET_VALUE not in error.message
    assert "zz" not in error.message


def test_the_same_name_in_headers_and_secret_headers_is_refused() -> None:
    error = only_error(headers={"Authorization": "a"}, secret_headers={"authorization": "b"})
    assert error.field == "payload.secret_headers"
    assert "authorization" in error.message
    assert "both" in error.message


def test_at_most_fifty_headers_together() -> None:
    headers = {f"X-{i}": "v" for i in range(30)}
    assert errors(headers=headers, secret_headers={f"S-{i}": "v" for i in range(20)}) == []
    error = only_error(headers=headers, secret_headers={f"S-{i}": "v" for i in range(21)})
    assert error.field == "payload.secret_headers"
    assert "at most 50" in error.message


# -- body ------------------------------------------------------------------------------------


@pytest.mark.parametrize("body", ["text", "", {"a": [1, 2.5]}, [], 0, 1.5, True, False, None])
def test_bodies_accepted(body: Any) -> None:
    assert errors(body=body) == []


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
def test_methods_other_than_get_may_have_a_body(method: str) -> None:
    assert errors(method=method, body={"a": 1}) == []


@pytest.mark.parametrize("body", ["", "x", {}, 0, False])
def test_a_get_may_not_have_a_body(body: Any) -> None:
    error = only_error(method="GET", body=body)
    assert error.field == "payload.body"
    assert "GET" in error.message


def test_a_get_may_give_an_explicit_null_body() -> None:
    assert errors(method="GET", body=None) == []


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (float("nan"), "JSON"),
        ({"a": float("inf")}, "JSON"),
        ({"a": object()}, "JSON"),
        ("\ud800", "lone surrogates"),
        ({"k": "\udfff"}, "lone surrogates"),
    ],
)
def test_bodies_refused(body: Any, words: str) -> None:
    error = only_error(body=body)
    assert error.field == "payload.body"
    assert words in error.message


# -- timeout_seconds -------------------------------------------------------------------------


@pytest.mark.parametrize("seconds", [0.1, 1, 30, 59.5, 60])
def test_timeouts_accepted(seconds: float) -> None:
    assert errors(timeout_seconds=seconds) == []


@pytest.mark.parametrize("seconds", [0, 0.05, -1, 60.01, 61, "5", True, None, float("nan")])
def test_timeouts_refused(seconds: Any) -> None:
    assert only_error(timeout_seconds=seconds).field == "payload.timeout_seconds"


# -- the request -----------------------------------------------------------------------------


def test_the_request_carries_what_was_asked() -> None:
    request = build(
        method="PUT", headers={"X-Trace": "t"}, secret_headers={"Authorization": SECRET_VALUE}
    )
    assert request.url == URL
    assert request.method == "PUT"
    assert request.timeout_seconds == 30
    assert request.headers["X-Trace"] == "t"
    assert request.headers["Authorization"] == SECRET_VALUE


def test_hopper_headers_name_the_job_and_attempt() -> None:
    headers = build(context(attempt=3)).headers
    assert headers["Hopper-Job-Id"] == "job_01HX"
    assert headers["Hopper-Attempt"] == "3"
    assert headers["webhook-id"] == "job_01HX.3"


def test_the_timestamp_is_now_in_unix_seconds() -> None:
    request = request_for(loaded(), context(), [new_secret()], NOW)
    assert request.headers["webhook-timestamp"] == str(int(NOW.timestamp()))


def test_the_signature_verifies_with_standard_webhooks() -> None:
    secret = new_secret()
    request = build(secrets=[secret], body={"order": 42, "note": "héllo"})
    assert Webhook(secret).verify(request.body, request.headers) == {"order": 42, "note": "héllo"}


@pytest.mark.parametrize("body", [None, "", "plain text ✓", [1, {"a": None}]])
def test_the_signature_covers_the_body_exactly_as_sent(body: Any) -> None:
    secret = new_secret()
    request = build(secrets=[secret], body=body)
    Webhook(secret).verify(request.body or b"", request.headers, json_parse=False)
    tampered = (request.body or b"") + b" "
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(tampered, request.headers, json_parse=False)


def test_during_a_rotation_either_secret_verifies() -> None:
    new, old = new_secret(), new_secret()
    request = build(secrets=[new, old], body="x")
    assert len(request.headers["webhook-signature"].split(" ")) == 2
    for secret in (new, old):
        Webhook(secret).verify(request.body, request.headers, json_parse=False)
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(request.body, request.headers, json_parse=False)


def test_a_json_body_is_compact_json() -> None:
    request = build(body={"a": [1, 2], "b": "é"})
    assert request.body == '{"a":[1,2],"b":"é"}'.encode()
    assert request.headers["Content-Type"] == "application/json"


@pytest.mark.parametrize("body", [0, 1.5, True, False, [], {}])
def test_other_json_values_are_json_too(body: Any) -> None:
    request = build(body=body)
    assert request.body is not None and json.loads(request.body) == body
    assert request.headers["Content-Type"] == "application/json"


def test_a_string_body_is_sent_as_text() -> None:
    request = build(body='{"not": "parsed"} ✓')
    assert request.body == '{"not": "parsed"} ✓'.encode()
    assert request.headers["Content-Type"] == "text/plain; charset=utf-8"


def test_no_body_sends_none_and_no_content_type() -> None:
    for request in (build(), build(body=None), build(method="GET")):
        assert request.body is None
        assert not any(name.lower() == "content-type" for name in request.headers)


@pytest.mark.parametrize("where", ["headers", "secret_headers"])
@pytest.mark.parametrize("body", ["text", {"a": 1}])
def test_a_given_content_type_wins(where: str, body: Any) -> None:
    request = build(body=body, **{where: {"content-type": "application/vnd.x+json"}})
    types = [v for k, v in request.headers.items() if k.lower() == "content-type"]
    assert types == ["application/vnd.x+json"]


def test_the_request_timeout_stops_at_the_jobs_deadline() -> None:
    now = datetime.now(UTC)
    soon = context(deadline=now + timedelta(seconds=12))
    assert request_for(loaded(timeout_seconds=60), soon, [new_secret()], now).timeout_seconds == 12
    assert request_for(loaded(timeout_seconds=5), soon, [new_secret()], now).timeout_seconds == 5


# -- the answer ------------------------------------------------------------------------------


def test_200_is_the_result_with_only_the_kept_headers() -> None:
    headers = {
        "content-type": "application/json",
        "location": "/x",
        "etag": '"v1"',
        "retry-after": "5",
        "set-cookie": "session=abc",
        "server": "nginx",
    }
    result = outcome(answered(200, '{"ok": "✓"}'.encode(), headers), NOW)
    assert result == {
        "status": 200,
        "headers": {
            "content-type": "application/json",
            "location": "/x",
            "etag": '"v1"',
            "retry-after": "5",
        },
        "body": '{"ok": "✓"}',
        "truncated": False,
    }
    assert JOB_TYPE.validate_result(result) == []


def test_201_is_a_result_too() -> None:
    result = outcome(answered(201, b"", {"location": "/orders/1"}), NOW)
    assert result["status"] == 201
    assert result["headers"] == {"location": "/orders/1"}
    assert result["body"] == ""


def test_a_truncated_body_is_flagged_and_bad_bytes_replaced() -> None:
    result = outcome(answered(200, b"ok \xff\xfe", truncated=True), NOW)
    assert result["truncated"] is True
    assert result["body"] == "ok \ufffd\ufffd"


def test_a_body_past_the_limit_is_cut_and_flagged() -> None:
    result = outcome(answered(200, b"a" * (MAX_ANSWER_BODY_BYTES + 10)), NOW)
    assert len(result["body"]) == MAX_ANSWER_BODY_BYTES
    assert result["truncated"] is True


def test_302_fails_now_naming_the_location() -> None:
    with pytest.raises(PermanentFailure) as failed:
        outcome(answered(302, b"moved", {"location": "https://elsewhere.example/"}), NOW)
    message = str(failed.value)
    assert message.startswith("HTTP 302")
    assert "redirects are not followed" in message
    assert "https://elsewhere.example/" in message
    assert "moved" in message


@pytest.mark.parametrize("status", [300, 301, 303, 307, 308])
def test_other_redirects_fail_now_even_without_a_location(status: int) -> None:
    with pytest.raises(PermanentFailure, match=f"^HTTP {status} \\(redirects are not followed\\)$"):
        outcome(answered(status), NOW)


def test_404_fails_now_with_an_excerpt_of_the_body() -> None:
    with pytest.raises(PermanentFailure) as failed:
        outcome(answered(404, ("no such hook " + "x" * 1000).encode()), NOW)
    message = str(failed.value)
    assert message.startswith("HTTP 404: no such hook")
    assert len(message) == len("HTTP 404: ") + 500
    assert "redirect" not in message


@pytest.mark.parametrize("status", [100, 304, 400, 401, 403, 409, 410, 422, 600])
def test_other_statuses_fail_now(status: int) -> None:
    with pytest.raises(PermanentFailure, match=f"^HTTP {status}$"):
        outcome(answered(status), NOW)


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504, 599])
def test_busy_statuses_are_retried(status: int) -> None:
    with pytest.raises(RetryLater, match=f"^HTTP {status}$") as retried:
        outcome(answered(status, b"busy"), NOW)
    assert retried.value.after_seconds is None


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("120", 120.0),
        ("0", 0.0),
        (" 7 ", 7.0),
        ("3600", 3600.0),
        ("3601", 3600.0),
        ("99999999999999999999", 3600.0),
        (format_datetime(NOW + timedelta(seconds=90), usegmt=True), 90.0),
        ("Sun, 01 Mar 2026 12:10:00 GMT", 600.0),
        ("Sun, 01 Mar 2026 11:00:00 GMT", 0.0),
        ("Mon, 02 Mar 2026 12:00:00 GMT", 3600.0),
    ],
)
def test_retry_after_values(value: str, seconds: float) -> None:
    assert retry_after(value, NOW) == seconds


@pytest.mark.parametrize("value", [None, "", "soon", "-5", "1.5", "²", "Sun, 99 Foo 2026"])
def test_unparseable_retry_after_is_none(value: str | None) -> None:
    assert retry_after(value, NOW) is None


@pytest.mark.parametrize("status", [408, 429, 503])
def test_retry_after_sets_the_delay(status: int) -> None:
    with pytest.raises(RetryLater) as retried:
        outcome(answered(status, headers={"retry-after": "30"}), NOW)
    assert retried.value.after_seconds == 30.0
    with pytest.raises(RetryLater) as retried:
        outcome(answered(status, headers={"retry-after": "Sun, 01 Mar 2026 13:00:05 GMT"}), NOW)
    assert retried.value.after_seconds == 3600.0
    with pytest.raises(RetryLater) as retried:
        outcome(answered(status, headers={"retry-after": "later"}), NOW)
    assert retried.value.after_seconds is None


@pytest.mark.parametrize("error", ["timeout", "connection refused"])
def test_no_answer_is_retried_on_the_backoff(error: str) -> None:
    with pytest.raises(RetryLater, match=f"^no answer: {error}$") as retried:
        outcome(answered(None, error=error), NOW)
    assert retried.value.after_seconds is None


def test_a_refused_target_fails_now() -> None:
    with pytest.raises(PermanentFailure, match=r"^the target was refused: a private address$"):
        outcome(answered(None, refused="a private address"), NOW)


# -- the handler -----------------------------------------------------------------------------


def test_run_sends_once_for_the_tenant_and_returns_the_result() -> None:
    targets = FakeTargets(answer=answered(200, b"done", {"etag": "e"}))
    result = JOB_TYPE.handler(loaded(body={"a": 1}), context(targets))
    assert result == {"status": 200, "headers": {"etag": "e"}, "body": "done", "truncated": False}
    assert targets.asked_for == ["ten_1"]
    [(tenant, request)] = targets.sent
    assert tenant == "ten_1"
    Webhook(targets.secrets[0]).verify(request.body, request.headers)


def test_run_without_the_port_is_a_clear_error() -> None:
    with pytest.raises(RuntimeError, match="HTTP targets port"):
        JOB_TYPE.handler(loaded(), context(None))


def test_run_without_a_secret_fails_now_and_sends_nothing() -> None:
    targets = FakeTargets(secrets=[])
    with pytest.raises(PermanentFailure, match="POST /v1/http-target-secret"):
        JOB_TYPE.handler(loaded(), context(targets))
    assert targets.sent == []


def test_run_when_canceled_sends_nothing() -> None:
    targets = FakeTargets()
    ctx = context(targets)
    ctx.cancellation = CancellationToken()
    ctx.cancellation.cancel("timeout")
    with pytest.raises(JobCanceled):
        JOB_TYPE.handler(loaded(), ctx)
    assert targets.sent == []


@pytest.mark.parametrize(
    "answer",
    [
        answered(302, f"see {SECRET_VALUE}".encode(), {"location": f"https://x/?t={SECRET_VALUE}"}),
        answered(404, f"you sent Authorization: {SECRET_VALUE}".encode()),
        answered(503, SECRET_VALUE.encode(), {"retry-after": "1"}),
        answered(None, error=f"timeout after {SECRET_VALUE}"),
        answered(None, refused=f"refused {SECRET_VALUE}"),
    ],
)
def test_secret_header_values_are_in_no_message(answer: TargetAnswer) -> None:
    targets = FakeTargets(answer=answer)
    given = loaded(secret_headers={"Authorization": SECRET_VALUE, "X-Key": "k-2f9a"})
    with pytest.raises((PermanentFailure, RetryLater)) as raised:
        JOB_TYPE.handler(given, context(targets))
    assert SECRET_VALUE not in str(raised.value)
    assert "k-2f9a" not in str(raised.value)


def test_a_success_that_echoes_a_secret_header_records_it_redacted() -> None:
    echoed = f"you sent Authorization: {SECRET_VALUE}"
    answer = answered(200, echoed.encode(), {"location": f"https://x/?t={SECRET_VALUE}"})
    given = loaded(secret_headers={"Authorization": SECRET_VALUE})
    recorded = JOB_TYPE.handler(given, context(FakeTargets(answer=answer)))
    assert recorded["body"] == "you sent Authorization: [redacted]"
    assert recorded["headers"] == {"location": "https://x/?t=[redacted]"}


def test_a_secret_that_contains_another_is_hidden_whole() -> None:
    answer = answered(400, b"token=abcdef")
    with pytest.raises(PermanentFailure) as failed:
        outcome(answer, NOW, hide=["abc", "abcdef"])
    assert str(failed.value) == "HTTP 400: token=[redacted]"


def test_a_secret_across_the_excerpts_end_leaves_none_of_itself() -> None:
    secret = "Bearer sk_live_0123456789abcdef"
    body = ("x" * (EXCERPT_CHARS - 10) + secret + "y" * 100).encode()
    with pytest.raises(PermanentFailure) as failed:
        outcome(answered(401, body), NOW, hide=[secret])
    message = str(failed.value)
    assert "Bearer" not in message
    assert message == "HTTP 401: " + "x" * (EXCERPT_CHARS - 10) + "[redacted]"


def test_a_body_cut_inside_a_secret_keeps_none_of_its_beginning() -> None:
    secret = "sk_live_0123456789abcdef"
    body = b"z" * (MAX_ANSWER_BODY_BYTES - 6) + secret.encode()
    recorded = outcome(answered(200, body), NOW, hide=[secret])
    assert recorded["truncated"] is True
    assert recorded["body"] == "z" * (MAX_ANSWER_BODY_BYTES - 6) + "[redacted]"


def test_a_secret_echoed_inside_a_json_string_is_blanked_too() -> None:
    secret = 'pa"ss\\word'
    echoed = json.dumps({"authorization": secret}).encode()
    recorded = outcome(answered(200, echoed), NOW, hide=[secret])
    assert recorded["body"] == '{"authorization": "[redacted]"}'
