"""The `http` pool's sending: at most four requests to one host in flight in a process, while
another host's request goes at once; the tenant's allow-list, however a URL spells its host."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from domain.context import CancellationToken, JobCanceled
from domain.http_targets.service import Signing
from domain.ports import TargetRequest
from workers.http_targets import PER_HOST, GuardedTargets, HostSlots
from workers.outbound import OutboundGuard, OutboundPolicy
from workers.outbound.client import Reply


def test_at_most_four_requests_per_host_are_in_flight() -> None:
    slots = HostSlots(4)
    most: list[int] = []
    release = threading.Event()

    def hold(host: str) -> None:
        assert slots.acquire(host, timeout=10)
        most.append(slots.in_flight("a.example"))
        release.wait(5)
        slots.release(host)

    threads = [threading.Thread(target=hold, args=("a.example",)) for _ in range(6)]
    threads.append(threading.Thread(target=hold, args=("b.example",)))
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 5
    while len(most) < 5 and time.monotonic() < deadline:  # four of a.example, one of b.example
        time.sleep(0.01)
    time.sleep(0.1)
    assert len(most) == 5, "the other host waited behind the first"
    assert slots.in_flight("a.example") == 4
    assert slots.in_flight("b.example") == 1
    release.set()
    for thread in threads:
        thread.join(5)
    assert len(most) == 7
    assert max(most) == 4
    assert slots.in_flight("a.example") == 0


def test_a_wait_for_a_slot_ends_with_its_timeout_or_its_cancellation() -> None:
    slots = HostSlots(1)
    assert slots.acquire("a.example", timeout=1)
    started = time.monotonic()
    assert not slots.acquire("a.example", timeout=0.3)
    assert time.monotonic() - started >= 0.3
    canceled = CancellationToken()
    threading.Timer(0.2, canceled.cancel).start()
    started = time.monotonic()
    assert not slots.acquire("a.example", timeout=30, cancellation=canceled)
    assert time.monotonic() - started < 5  # the cancellation, not the timeout, ended it
    slots.release("a.example")
    assert slots.acquire("a.example", timeout=0)


class Settings:
    def __init__(self, allowed: set[str]) -> None:
        self.allowed = frozenset(allowed)

    def signing(self, tenant_id: str) -> Signing:
        return Signing(secrets=["whsec_x"], allowed_hosts=self.allowed)


class Client:
    """Records what would be sent, and answers 204."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, float, OutboundGuard]] = []

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Reply:
        self.sent.append((url, kwargs["total_timeout"], kwargs["guard"]))
        return Reply(status=204, headers={}, body=b"", truncated=False, duration_ms=1)


def targets(client: Client, allowed: set[str] = frozenset()) -> GuardedTargets:
    policy = OutboundPolicy(allow_private=False, allow_http=True, allowed_networks=())
    return GuardedTargets(Settings(allowed), client, policy, allow_private=False)  # type: ignore[arg-type]


def request(url: str, timeout: float = 10) -> TargetRequest:
    return TargetRequest(url=url, method="GET", headers={}, body=None, timeout_seconds=timeout)


@pytest.mark.parametrize(
    "url", ["https://billing.internal/", "https://BILLING.Internal./x", "http://[0:0::1]:8080/"]
)
def test_a_listed_host_is_matched_however_the_url_spells_it(url: str) -> None:
    client = Client()
    sending = targets(client, {"billing.internal", "::1"})
    sending.send("t", request(url), CancellationToken())
    (_, _, guard) = client.sent[0]
    assert guard is sending._listed


def test_an_unlisted_host_gets_the_closed_guard() -> None:
    client = Client()
    sending = targets(client, {"billing.internal"})
    sending.send("t", request("https://other.internal/"), CancellationToken())
    assert client.sent[0][2] is sending._unlisted


def test_the_wait_for_a_slot_comes_out_of_the_requests_timeout() -> None:
    client = Client()
    sending = targets(client)
    for _ in range(PER_HOST):
        assert sending._slots.acquire("busy.example", timeout=1)
    threading.Timer(0.5, sending._slots.release, ["busy.example"]).start()
    sending.send("t", request("https://busy.example/", timeout=10), CancellationToken())
    (_, total_timeout, _) = client.sent[0]
    # Half a second of waiting came out of it. The send measures its wait from its own start,
    # a little after the timer's, so the margin is for that gap, never for the wait.
    assert 8.0 <= total_timeout <= 9.75


def test_no_slot_within_the_timeout_is_an_answer_and_a_cancellation_sends_nothing() -> None:
    client = Client()
    sending = targets(client)
    for _ in range(PER_HOST):
        assert sending._slots.acquire("busy.example", timeout=1)
    answer = sending.send("t", request("https://busy.example/", timeout=0.2), CancellationToken())
    assert answer.status is None and answer.error is not None and "in flight" in answer.error
    canceled = CancellationToken()
    canceled.cancel("canceled by the client")
    with pytest.raises(JobCanceled, match="canceled by the client"):
        sending.send("t", request("https://busy.example/"), canceled)
    assert client.sent == []
