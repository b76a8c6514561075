"""Fair dispatch: the choice itself (``fairness.choose``, pure), and ``DispatchService`` over the
real repositories on SQLite (``MemoryStack``): the window, the order, what is never dispatched,
and what comes back after a lost or refused publish."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update

from domain.auth import Principal
from domain.commands import SubmitJob
from domain.dispatch.fairness import Share, choose
from domain.dispatch.keys import parse_rate
from domain.dispatch.service import DispatchService
from domain.model import Job, Role, Tenant
from domain.ports import RunJob
from tests.unit.builders import echo, sleep
from tests.unit.memory_stack import MemoryStack

# -- the choice -------------------------------------------------------------------------------


def test_equal_tenants_take_turns_and_each_keeps_its_own_order() -> None:
    ready = {"a": ["a1", "a2", "a3", "a4"], "b": ["b1", "b2"]}
    choice = choose(ready, {"a": Share(1), "b": Share(1)}, 0.0, 10)
    assert choice.jobs == ["a1", "b1", "a2", "b2", "a3", "a4"]


def test_weights_share_the_window_in_their_proportion() -> None:
    ready = {"heavy": [f"h{n}" for n in range(100)], "light": [f"l{n}" for n in range(100)]}
    choice = choose(ready, {"heavy": Share(3), "light": Share(1)}, 0.0, 80)
    counts = Counter(job[0] for job in choice.jobs)
    assert counts == {"h": 60, "l": 20}


def test_the_room_bounds_the_choice_and_the_passes_say_where_each_stopped() -> None:
    choice = choose({"a": ["a1", "a2", "a3"]}, {"a": Share(2)}, 5.0, 2)
    assert choice.jobs == ["a1", "a2"]
    assert choice.passes == {"a": 6.0}
    assert choice.clock == 5.5


def test_a_tenant_back_from_a_quiet_spell_starts_at_the_queues_time() -> None:
    """Its old pass is far behind: without the clock it would take every place until it
    caught up."""
    shares = {"busy": Share(1, passed=1000.0), "back": Share(1, passed=3.0)}
    ready = {"busy": ["u1", "u2", "u3"], "back": ["k1", "k2", "k3"]}
    choice = choose(ready, shares, 1000.0, 4)
    assert sorted(choice.jobs[:2]) == ["k1", "u1"]
    assert Counter(job[0] for job in choice.jobs) == {"u": 2, "k": 2}


def test_a_tenant_without_jobs_or_room_gets_nothing() -> None:
    assert choose({"a": []}, {"a": Share(1)}, 0.0, 5).jobs == []
    assert choose({"a": ["a1"]}, {"a": Share(1)}, 0.0, 0).jobs == []


# -- the service ------------------------------------------------------------------------------


@pytest.fixture
def stack() -> MemoryStack:
    return MemoryStack()


def dispatcher(stack: MemoryStack, window: int = 100, lost_after: float = 60.0) -> DispatchService:
    return DispatchService(stack.uow, window, lost_after, hard_limit_margin_seconds=30)


def submit(stack: MemoryStack, who: Principal, *commands: SubmitJob) -> list[str]:
    return [job.id for job in stack.container.jobs.submit(who, list(commands), batch=True)]


def dispatched(stack: MemoryStack) -> list[str]:
    return [c.job_id for c in stack.publisher.published if isinstance(c, RunJob)]


def ready(stack: MemoryStack, who: Principal, job_id: str) -> bool:
    """The job is queued and out of the window (not dispatched)."""
    with stack.uow() as uow:
        job = uow.jobs.get(who.tenant_id, job_id)
        return job is not None and job.status == "queued" and job.published_at is None


def test_a_ready_job_is_dispatched_once_with_its_command(stack: MemoryStack) -> None:
    alice = stack.principal(Role.SUBMITTER)
    [job_id] = submit(stack, alice, sleep(0, priority="high", timeout_seconds=20))
    service = dispatcher(stack)

    assert service.dispatch() == 1
    assert [c for c in stack.publisher.published if isinstance(c, RunJob)] == [
        RunJob(job_id, "long", "high", None, 50)
    ]
    with stack.uow() as uow:
        assert uow.jobs.get(alice.tenant_id, job_id).published_at is not None  # type: ignore[union-attr]
    assert service.dispatch() == 0  # in flight: not again


def test_a_job_for_later_waits_for_its_time(stack: MemoryStack) -> None:
    alice = stack.principal(Role.SUBMITTER)
    later = datetime.now(UTC) + timedelta(hours=1)
    [job_id] = submit(stack, alice, echo(run_at=later))
    service = dispatcher(stack)
    assert service.dispatch() == 0
    stack.set_rows(Job, job_id, run_at=datetime.now(UTC) - timedelta(seconds=1))
    assert service.dispatch() == 1 and dispatched(stack) == [job_id]


def test_the_window_bounds_what_is_in_flight_and_a_claim_frees_a_place(
    stack: MemoryStack,
) -> None:
    alice = stack.principal(Role.SUBMITTER)
    ids = submit(stack, alice, *[echo(str(n)) for n in range(5)])
    service = dispatcher(stack, window=3)

    assert service.dispatch() == 3
    assert dispatched(stack) == ids[:3]
    assert service.dispatch() == 0
    assert stack.container.execution.claim(ids[0], "host:1") is not None
    assert service.dispatch() == 1
    assert dispatched(stack) == ids[:4]


def test_a_tenth_of_the_window_is_kept_for_the_tenants_who_arrive(stack: MemoryStack) -> None:
    flood, late = stack.principal(Role.SUBMITTER), stack.principal(Role.SUBMITTER)
    submit(stack, flood, *[echo(str(n)) for n in range(20)])
    service = dispatcher(stack, window=20)
    assert service.dispatch() == 18  # alone, it still leaves two places
    [mine] = submit(stack, late, echo("late"))
    assert service.dispatch() == 1 and dispatched(stack)[-1] == mine


def test_a_dispatch_never_claimed_is_taken_for_lost_after_the_threshold(
    stack: MemoryStack,
) -> None:
    alice = stack.principal(Role.SUBMITTER)
    [job_id] = submit(stack, alice, echo())
    service = dispatcher(stack, window=1, lost_after=30)
    assert service.dispatch() == 1
    assert service.forget_lost() == 0  # fresh: its message may still come
    stack.set_rows(Job, job_id, published_at=datetime.now(UTC) - timedelta(seconds=31))
    assert service.forget_lost() == 1
    assert service.dispatch() == 1
    assert dispatched(stack) == [job_id, job_id]


def test_only_queued_jobs_of_unpaused_queues_are_dispatched(stack: MemoryStack) -> None:
    alice, bob = stack.principal(Role.ADMIN), stack.principal(Role.ADMIN)
    canceled, running, fine = submit(stack, alice, echo("a"), echo("b"), echo("c"))
    stack.container.jobs.cancel(alice, canceled)
    stack.set_rows(Job, running, status="running")
    [held] = submit(stack, bob, echo("held"))
    stack.container.queue_control.pause(bob.tenant_id, "default")

    assert dispatcher(stack).dispatch() == 1
    assert dispatched(stack) == [fine]
    stack.container.queue_control.resume(bob.tenant_id, "default")
    assert dispatcher(stack).dispatch() == 1
    assert dispatched(stack) == [fine, held]


def test_a_pause_takes_the_tenants_jobs_in_flight_out_of_the_window(stack: MemoryStack) -> None:
    alice, bob = stack.principal(Role.ADMIN), stack.principal(Role.ADMIN)
    [paused] = submit(stack, alice, echo())
    service = dispatcher(stack, window=1)
    assert service.dispatch() == 1
    [other] = submit(stack, bob, echo())
    assert service.dispatch() == 0  # the window is full
    stack.container.queue_control.pause(alice.tenant_id, "default")
    assert service.dispatch() == 1
    assert dispatched(stack) == [paused, other]
    # the paused job's message reaches a worker: it is dropped, and the job is ready again
    assert stack.container.execution.claim(paused, "host:1") is None
    assert ready(stack, alice, paused)


def test_tenants_take_turns_and_priority_orders_each_tenants_own_jobs(
    stack: MemoryStack,
) -> None:
    flood, single = stack.principal(Role.SUBMITTER), stack.principal(Role.SUBMITTER)
    normal = submit(stack, flood, *[echo(str(n)) for n in range(6)])
    urgent = submit(stack, flood, echo("urgent", priority="high"))
    [mine] = submit(stack, single, echo("mine", priority="low"))

    assert dispatcher(stack, window=4).dispatch() == 4
    order = dispatched(stack)
    assert order[0] in (urgent[0], mine) and set(order[:2]) == {urgent[0], mine}
    assert order[2:] == normal[:2]


def test_weights_hold_across_passes(stack: MemoryStack) -> None:
    heavy, light = stack.principal(Role.SUBMITTER), stack.principal(Role.SUBMITTER)
    with stack.uow() as uow:
        uow.session.execute(update(Tenant).where(Tenant.id == heavy.tenant_id).values(weight=3))
        uow.commit()
    owner = {job_id: "heavy" for job_id in submit(stack, heavy, *[echo() for _ in range(60)])}
    owner |= {job_id: "light" for job_id in submit(stack, light, *[echo() for _ in range(60)])}
    service = dispatcher(stack, window=4)
    for _ in range(10):  # ten passes of four: each claim frees a place
        assert service.dispatch() == 4
        for job_id in dispatched(stack)[-4:]:
            assert stack.container.execution.claim(job_id, "host:1") is not None
    assert Counter(owner[job_id] for job_id in dispatched(stack)) == {"heavy": 30, "light": 10}


def test_a_failed_publish_hands_the_jobs_back_ready(stack: MemoryStack) -> None:
    alice = stack.principal(Role.SUBMITTER)
    [job_id] = submit(stack, alice, echo())
    stack.publisher.broken = True
    service = dispatcher(stack, window=1)
    assert service.dispatch() == 1
    stack.publisher.broken = False
    assert service.dispatch() == 1  # its place was given back at once
    assert dispatched(stack) == [job_id]


# -- concurrency and rate keys ----------------------------------------------------------------


def test_a_rate_is_read_as_its_interval_and_a_bad_one_says_what_it_takes() -> None:
    assert parse_rate("5/second").interval == timedelta(seconds=0.2)
    assert parse_rate("300/minute").interval == timedelta(seconds=0.2)
    assert parse_rate("1/hour").interval == timedelta(hours=1)
    for bad in ("0/second", "5/day", "five/second", "5/second ", "1000000/second"):
        with pytest.raises(ValueError, match="10/second"):
            parse_rate(bad)


def keyed(stack: MemoryStack, who: Principal, count: int, **keys: str) -> list[str]:
    return submit(stack, who, *[echo(str(n), **keys) for n in range(count)])


def set_limit(stack: MemoryStack, who: Principal, key: str, limit: int) -> None:
    stack.container.key_limits.set_concurrency(who, key, limit)


def test_a_concurrency_key_holds_its_jobs_to_its_limit_and_a_finish_frees_a_place(
    stack: MemoryStack,
) -> None:
    alice = stack.principal(Role.ADMIN)
    set_limit(stack, alice, "account-42", 2)
    held = keyed(stack, alice, 5, concurrency_key="account-42")
    [free] = submit(stack, alice, echo("free"))
    service = dispatcher(stack)

    assert service.dispatch() == 3  # two of the key, and the job without one
    assert set(dispatched(stack)) == {held[0], held[1], free}
    claim = stack.container.execution.claim(held[0], "host:1")
    assert claim is not None
    assert service.dispatch() == 0  # running still holds its place
    stack.container.execution.succeed(claim, {"message": "0"})
    assert service.dispatch() == 1 and dispatched(stack)[-1] == held[2]


def test_the_keys_limit_is_the_tenants_own_and_another_tenants_key_is_apart(
    stack: MemoryStack,
) -> None:
    alice, bob = stack.principal(Role.ADMIN), stack.principal(Role.ADMIN)
    set_limit(stack, alice, "shared-name", 1)
    keyed(stack, alice, 3, concurrency_key="shared-name")
    keyed(stack, bob, 3, concurrency_key="shared-name")  # bob set no limit: none holds
    assert dispatcher(stack).dispatch() == 4


def test_a_claim_rechecks_the_limit_and_sets_a_job_aside_that_may_not_start(
    stack: MemoryStack,
) -> None:
    alice = stack.principal(Role.ADMIN)
    first, second = keyed(stack, alice, 2, concurrency_key="k")
    assert dispatcher(stack).dispatch() == 2  # no limit yet: both go
    set_limit(stack, alice, "k", 1)  # ... and now one at a time
    assert stack.container.execution.claim(first, "host:1") is not None
    assert stack.container.execution.claim(second, "host:2") is None
    assert ready(stack, alice, second)


def test_a_rate_key_sends_one_job_at_a_time_in_submit_order_at_its_rate(
    stack: MemoryStack,
) -> None:
    alice = stack.principal(Role.ADMIN)
    stack.container.key_limits.set_rate(alice, "partner", "1/hour")
    ids = keyed(stack, alice, 3, rate_key="partner")
    service = dispatcher(stack)
    assert service.dispatch() == 1 and dispatched(stack) == ids[:1]
    assert service.dispatch() == 0  # the first is in flight: the next waits for its start
    assert stack.container.execution.claim(ids[0], "host:1") is not None
    assert service.dispatch() == 0  # started: the key rests for an hour
    assert service.rests_for is not None and 3500 < service.rests_for <= 3600
    # the claim holds to the rate too, whatever dispatched the job
    stack.set_rows(Job, ids[1], published_at=datetime.now(UTC))
    assert stack.container.execution.claim(ids[1], "host:1") is None


def test_a_key_with_no_limit_or_rate_bounds_nothing(stack: MemoryStack) -> None:
    alice = stack.principal(Role.ADMIN)
    keyed(stack, alice, 4, concurrency_key="c", rate_key="r")
    assert dispatcher(stack).dispatch() == 4
