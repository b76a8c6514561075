"""The API's connection to RabbitMQ is cut for 10 s while submissions keep coming: every one is
accepted (202), none gets a 5xx, each costs a bounded time, and every accepted job runs."""

from __future__ import annotations

import threading
import time

from sqlalchemy.engine import Engine

from tests.faults.conftest import count_finished, job_states
from tests.faults.proxy import BLACKHOLE, FORWARD, RESET, Proxy
from tests.services import VHOST
from tests.stack import Stack, wait_until


def test_submissions_survive_a_cut_broker_connection(stack: Stack, db: Engine) -> None:
    proxy = Proxy(5672)
    try:
        stack.web(env={"BROKER_URL": f"amqp://guest:guest@127.0.0.1:{proxy.port}/{VHOST}"})
        stack.worker()
        stack.scheduler()
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
        proxy.set_mode(BLACKHOLE)  # the broker swallows packets
        time.sleep(5)
        proxy.set_mode(RESET)  # the broker is gone
        time.sleep(5)
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
    finally:
        proxy.close()
