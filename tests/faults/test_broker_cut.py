"""The connections of the API and of the scheduler (whose dispatcher publishes the jobs) to
RabbitMQ are cut for 10 s while submissions keep coming: every one is accepted (202), none gets
a 5xx, each costs a bounded time, and every accepted job runs. The scheduler's log shows that
publishing really failed, in both halves of the cut: a test whose cut missed the publisher would
prove nothing."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime

from sqlalchemy.engine import Engine

from tests.faults.conftest import count_finished, job_states
from tests.faults.proxy import BLACKHOLE, FORWARD, RESET, Proxy
from tests.services import VHOST
from tests.stack import Process, Stack, wait_until

# What the publisher says when it fails at once, touching no broker: it is resting after a
# failure, or another request holds the connection.
UNTRIED = ("a moment ago", "is busy")


def test_submissions_survive_a_cut_broker_connection(stack: Stack, db: Engine) -> None:
    proxy = Proxy(5672)
    try:
        cut = {"BROKER_URL": f"amqp://guest:guest@127.0.0.1:{proxy.port}/{VHOST}"}
        stack.web(env=cut)
        stack.worker()
        dispatcher = stack.scheduler(env=cut)
        keys = stack.new_tenant()
        results: list[tuple[int, float, str]] = []
        stop = threading.Event()

        def submit_until_stopped() -> None:
            while not stop.is_set():
                started = time.monotonic()
                response = stack.request(
                    "POST",
                    "/v1/jobs",
                    keys["submitter"],
                    json={"type": "echo", "payload": {"message": "x"}},
                )
                results.append((response.status_code, time.monotonic() - started, proxy.mode))
                time.sleep(0.02)

        submitters = [threading.Thread(target=submit_until_stopped) for _ in range(3)]
        for thread in submitters:
            thread.start()
        time.sleep(2)
        swallowing = datetime.now(UTC)
        proxy.set_mode(BLACKHOLE)  # the broker swallows packets
        time.sleep(5)
        gone = datetime.now(UTC)
        proxy.set_mode(RESET)  # the broker is gone
        time.sleep(5)
        back = datetime.now(UTC)
        proxy.set_mode(FORWARD)
        time.sleep(3)
        stop.set()
        for thread in submitters:
            thread.join()

        assert [r for r in results if r[0] != 202] == []
        during_cut = [seconds for _, seconds, mode in results if mode != FORWARD]
        assert len(during_cut) >= 10, "too few submissions during the cut to tell anything"
        during_cut.sort()
        median_ms = during_cut[len(during_cut) // 2] * 1000
        print(  # the figures for the record; bounds belong in bench/, not here
            f"\nsubmissions: {len(results)}, during the cut: {len(during_cut)}, "
            f"median {median_ms:.0f} ms, max {during_cut[-1] * 1000:.0f} ms"
        )
        wait_until(
            lambda: count_finished(db, keys["tenant_id"]) == len(results),
            120,
            "every accepted job to run",
        )
        assert set(job_states(db, keys["tenant_id"]).values()) == {"succeeded"}
        # Failures that reached the broker (not the rest's at-once refusals), in each half.
        failed = [at for at, error in publish_failures(dispatcher) if not untried(error)]
        print(f"publishes that failed at the broker during the cut: {len(failed)}")
        assert [at for at in failed if swallowing <= at < gone], "no publish timed out"
        assert [at for at in failed if gone <= at < back], "no publish failed while it was gone"
    finally:
        proxy.close()


def untried(error: str) -> bool:
    return any(marker in error for marker in UNTRIED)


def publish_failures(process: Process) -> list[tuple[datetime, str]]:
    """When each publish the process gave up on failed, and why, from its JSON log lines
    (``publish_failed``, written by the unit of work when it hands the jobs back ready)."""
    failures = []
    for line in process.output().splitlines():
        if '"publish_failed"' not in line:
            continue
        entry = json.loads(line)
        if entry.get("event") == "publish_failed":
            failures.append((datetime.fromisoformat(entry["timestamp"]), entry["error"]))
    return failures
