"""``IdempotencyService`` and the commit hook that binds a claim, over the real unit of work
(SQLite in memory): claim, replay, conflicts, expiry, take-over, and the stored answer sealed."""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from domain import idempotency
from domain.errors import Conflict, ValidationFailed
from domain.idempotency import BindClaim, Claim, Replay, current_claim, request_hash
from domain.model import IdempotencyRecord, Tenant
from domain.secrets import SecretBox, generate_key
from tests.unit.memory_stack import MemoryStack

ROUTE = "POST /v1/jobs"


@pytest.fixture
def stack() -> MemoryStack:
    return MemoryStack()


@pytest.fixture(autouse=True)
def no_claim_left() -> None:
    current_claim.set(None)


def claim(key: str = "k1", api_key_id: str | None = "key_a", tenant: str = "ten_a") -> Claim:
    return Claim(tenant, ROUTE, key, api_key_id)


def record(stack: MemoryStack, c: Claim) -> IdempotencyRecord | None:
    with stack.uow() as uow:
        return uow.session.get(IdempotencyRecord, (c.tenant_id, c.route, c.key))


def test_the_request_hash_is_the_sha256_of_canonical_json() -> None:
    body = {"b": [1, "é"], "a": None}
    canonical = '{"a":null,"b":[1,"é"]}'
    assert request_hash(body) == hashlib.sha256(canonical.encode()).hexdigest()
    assert request_hash({"a": None, "b": [1, "é"]}) == request_hash(body)
    assert request_hash(body) != request_hash({"a": None, "b": [1, "e"]})
    # a lone surrogate (valid JSON escapes can make one) still hashes
    assert len(request_hash("\ud800")) == 64
    assert request_hash("\ud800") != request_hash("\ud801")
    assert json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False) == canonical


def test_a_first_request_claims_the_key_in_flight(stack: MemoryStack) -> None:
    c = claim()
    assert stack.container.idempotency.begin(c, "hash-1") is None
    found = record(stack, c)
    assert found is not None
    assert (found.tenant_id, found.route, found.key) == ("ten_a", ROUTE, "k1")
    assert found.request_hash == "hash-1" and found.api_key_id == "key_a"
    assert found.state == "in_flight" and found.response_status is None
    assert found.created_at is not None and found.updated_at == found.created_at


def test_a_second_request_while_the_first_runs_is_a_conflict(stack: MemoryStack) -> None:
    service = stack.container.idempotency
    service.begin(claim(), "hash-1")
    with pytest.raises(Conflict) as conflict:
        service.begin(claim(), "hash-1")
    assert str(conflict.value) == "a request with this Idempotency-Key is in flight"


def test_the_same_key_with_another_body_is_a_422_on_the_header(stack: MemoryStack) -> None:
    service = stack.container.idempotency
    service.begin(claim(), "hash-1")
    with pytest.raises(ValidationFailed) as refused:
        service.begin(claim(), "hash-2")
    [error] = refused.value.errors
    assert error.field == "header.Idempotency-Key"
    assert error.message == "This key was used with a different body."
    assert (
        str(refused.value) == "The Idempotency-Key was already used with a different request body."
    )


def test_a_finished_2xx_is_replayed_to_the_same_key_only(stack: MemoryStack) -> None:
    service = stack.container.idempotency
    c = claim()
    service.begin(c, "hash-1")
    service.finish(c, 201, '{"id":"job_1"}', {"Location": "/v1/jobs/job_1"})
    stored = record(stack, c)
    assert stored is not None and stored.state == "done" and stored.response_status == 201
    assert stored.response_body != '{"id":"job_1"}'  # sealed at rest
    assert stack.container.box.open(stored.response_body or "") == '{"id":"job_1"}'
    assert stored.response_headers == {"Location": "/v1/jobs/job_1"}
    assert stored.updated_at >= stored.created_at
    assert service.begin(c, "hash-1") == Replay(
        201, '{"id":"job_1"}', {"Location": "/v1/jobs/job_1"}
    )
    for other in (claim(api_key_id="key_b"), claim(api_key_id=None)):
        with pytest.raises(Conflict) as conflict:
            service.begin(other, "hash-1")
        assert "another credential" in str(conflict.value)


def test_a_record_with_no_owner_replays_to_no_one(stack: MemoryStack) -> None:
    service = stack.container.idempotency
    c = claim(api_key_id=None)
    service.begin(c, "hash-1")
    service.finish(c, 200, "{}", {})
    with pytest.raises(Conflict):
        service.begin(c, "hash-1")


def test_replayed_headers_default_to_none_given(stack: MemoryStack) -> None:
    service = stack.container.idempotency
    c = claim()
    service.begin(c, "h")
    service.finish(c, 200, "{}", {})
    with stack.uow() as uow:
        found = uow.session.get(IdempotencyRecord, ("ten_a", ROUTE, "k1"))
        assert found is not None
        found.response_headers = None
        uow.commit()
    assert service.begin(c, "h") == Replay(200, "{}", {})


def test_another_answer_frees_the_key_unless_the_change_committed(stack: MemoryStack) -> None:
    service = stack.container.idempotency
    c = claim()
    service.begin(c, "hash-1")
    service.finish(c, 422, "{}", {})
    assert record(stack, c) is None
    assert service.begin(c, "hash-2") is None  # free again, for any body
    with stack.uow() as uow:  # the change committed, bound to the claim
        found = uow.session.get(IdempotencyRecord, (c.tenant_id, c.route, c.key))
        assert found is not None
        found.state = "committed"
        uow.commit()
    service.finish(c, 500, "{}", {})
    stored = record(stack, c)
    assert stored is not None and stored.state == "committed"
    with pytest.raises(Conflict):
        service.begin(c, "hash-2")  # committed but unanswered: still in flight


def test_only_the_claims_own_row_is_finished(stack: MemoryStack) -> None:
    service = stack.container.idempotency
    mine, theirs, other_tenant = claim("k1"), claim("k2"), claim("k1", tenant="ten_b")
    for c in (mine, theirs, other_tenant):
        service.begin(c, "h")
    service.finish(mine, 200, "{}", {})
    service.finish(theirs, 400, "{}", {})
    assert record(stack, mine).state == "done"  # type: ignore[union-attr]
    assert record(stack, theirs) is None
    assert record(stack, other_tenant).state == "in_flight"  # type: ignore[union-attr]


@pytest.mark.parametrize(("status", "kept"), [(200, True), (299, True), (300, False), (199, False)])
def test_only_2xx_answers_are_kept(stack: MemoryStack, status: int, kept: bool) -> None:
    service = stack.container.idempotency
    c = claim()
    service.begin(c, "h")
    service.finish(c, status, "{}", {})
    assert (record(stack, c) is not None) is kept


def test_an_expired_record_frees_the_key(stack: MemoryStack) -> None:
    service = stack.container.idempotency
    c = claim()
    service.begin(c, "hash-1")
    service.finish(c, 201, "{}", {})
    found = record(stack, c)
    assert found is not None
    with stack.uow() as uow:
        row = uow.session.get(IdempotencyRecord, ("ten_a", ROUTE, "k1"))
        assert row is not None
        row.created_at = uow.now() - timedelta(hours=24, seconds=1)
        uow.commit()
    assert service.begin(c, "hash-2") is None  # another body: a new request
    assert record(stack, c).request_hash == "hash-2"  # type: ignore[union-attr]


def test_a_record_within_its_day_is_kept(stack: MemoryStack) -> None:
    service = stack.container.idempotency
    c = claim()
    service.begin(c, "hash-1")
    service.finish(c, 201, "{}", {})
    with stack.uow() as uow:
        row = uow.session.get(IdempotencyRecord, ("ten_a", ROUTE, "k1"))
        assert row is not None
        row.created_at = uow.now() - timedelta(hours=23)
        uow.commit()
    assert service.begin(c, "hash-1") == Replay(201, "{}", {})


def test_an_abandoned_claim_is_taken_over_after_a_minute(stack: MemoryStack) -> None:
    service = stack.container.idempotency
    c = claim()
    service.begin(c, "h")
    with stack.uow() as uow:
        row = uow.session.get(IdempotencyRecord, ("ten_a", ROUTE, "k1"))
        assert row is not None
        row.updated_at = uow.now() - timedelta(seconds=59)
        uow.commit()
    with pytest.raises(Conflict):
        service.begin(c, "h")  # not a minute yet
    with stack.uow() as uow:
        row = uow.session.get(IdempotencyRecord, ("ten_a", ROUTE, "k1"))
        assert row is not None
        row.updated_at = uow.now() - timedelta(seconds=61)
        uow.commit()
    assert service.begin(c, "h") is None
    taken = record(stack, c)
    assert taken is not None and taken.state == "in_flight"
    assert taken.updated_at > taken.created_at  # refreshed: a minute more before the next
    with pytest.raises(Conflict):
        service.begin(c, "h")
    assert timedelta(seconds=60) == idempotency.ABANDONED_AFTER


def test_a_committed_claim_is_never_taken_over(stack: MemoryStack) -> None:
    service = stack.container.idempotency
    c = claim()
    service.begin(c, "h")
    with stack.uow() as uow:
        row = uow.session.get(IdempotencyRecord, ("ten_a", ROUTE, "k1"))
        assert row is not None
        row.state = "committed"
        row.updated_at = uow.now() - timedelta(hours=1)
        uow.commit()
    with pytest.raises(Conflict):
        service.begin(c, "h")


def test_a_racing_claim_that_loses_the_insert_is_a_conflict(
    stack: MemoryStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two requests both saw no record; the primary key lets one insert win."""
    service = stack.container.idempotency
    service.begin(claim(), "h")
    real_get = Session.get

    def blind_get(session: Session, model: Any, key: Any, **options: Any) -> Any:
        return None if model is IdempotencyRecord else real_get(session, model, key, **options)

    monkeypatch.setattr(Session, "get", blind_get)
    with pytest.raises(Conflict) as conflict:
        service.begin(claim(), "h")
    assert str(conflict.value) == "a request with this Idempotency-Key is in flight"


def test_an_answer_sealed_under_a_removed_key_is_refused_not_rerun(stack: MemoryStack) -> None:
    service = stack.container.idempotency
    c = claim()
    service.begin(c, "h")
    service.finish(c, 201, "{}", {})
    service._box = SecretBox((generate_key(),))
    with pytest.raises(Conflict) as conflict:
        service.begin(c, "h")
    assert str(conflict.value) == "The answer kept for this Idempotency-Key can no longer be read."


def test_a_missing_stored_body_is_refused_too(stack: MemoryStack) -> None:
    service = stack.container.idempotency
    c = claim()
    service.begin(c, "h")
    service.finish(c, 201, "{}", {})
    with stack.uow() as uow:
        row = uow.session.get(IdempotencyRecord, ("ten_a", ROUTE, "k1"))
        assert row is not None
        row.response_body = None
        uow.commit()
    with pytest.raises(Conflict):
        service.begin(c, "h")


def test_done_without_a_status_is_still_in_flight(stack: MemoryStack) -> None:
    service = stack.container.idempotency
    c = claim()
    service.begin(c, "h")
    with stack.uow() as uow:
        row = uow.session.get(IdempotencyRecord, ("ten_a", ROUTE, "k1"))
        assert row is not None
        row.state = "done"
        uow.commit()
    with pytest.raises(Conflict) as conflict:
        service.begin(c, "h")
    assert str(conflict.value) == "a request with this Idempotency-Key is in flight"


def test_the_change_commits_the_claim_and_later_commits_do_not(stack: MemoryStack) -> None:
    service = stack.container.idempotency
    c = claim()
    service.begin(c, "h")
    current_claim.set(c)
    with stack.uow() as uow:
        uow.commit()  # the request's change
    bound = record(stack, c)
    assert bound is not None and bound.state == "committed"
    assert bound.updated_at >= bound.created_at
    assert current_claim.get() is None
    with stack.uow() as uow:
        uow.commit()  # a later commit has no claim to bind


def test_a_claim_taken_over_meanwhile_refuses_the_change(stack: MemoryStack) -> None:
    service = stack.container.idempotency
    c = claim()
    service.begin(c, "h")
    current_claim.set(c)
    with stack.uow() as uow:  # another request took it over and committed it
        row = uow.session.get(IdempotencyRecord, ("ten_a", ROUTE, "k1"))
        assert row is not None
        row.state = "committed"
        uow.session.commit()
    current_claim.set(c)
    with stack.uow() as uow:
        uow.add(Tenant(id="ten_zzzzzzzzzzzzzzzzzzzzzzzzzz", name="racing", created_at=uow.now()))
        with pytest.raises(Conflict) as conflict:
            uow.commit()
        assert str(conflict.value) == "the Idempotency-Key was taken over by another request"
    with stack.uow() as uow:
        assert uow.tenants.by_name("racing") is None  # the change did not commit
    assert current_claim.get() == c  # not bound: the claim is still the request's


def test_bind_touches_only_the_claims_row(stack: MemoryStack) -> None:
    service = stack.container.idempotency
    mine, other = claim("k1"), claim("k2")
    service.begin(mine, "h")
    service.begin(other, "h")
    current_claim.set(mine)
    with stack.uow() as uow:
        BindClaim().before_commit(uow.session, uow.now)
        uow.session.commit()
    assert record(stack, mine).state == "committed"  # type: ignore[union-attr]
    assert record(stack, other).state == "in_flight"  # type: ignore[union-attr]


def test_records_are_kept_apart_by_tenant_route_and_key(stack: MemoryStack) -> None:
    service = stack.container.idempotency
    for c in (claim(), claim(tenant="ten_b"), Claim("ten_a", "POST /v1/keys", "k1", "key_a")):
        assert service.begin(c, "h") is None
    with stack.uow() as uow:
        assert len(list(uow.session.scalars(select(IdempotencyRecord)))) == 3
