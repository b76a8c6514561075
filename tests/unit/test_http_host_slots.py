"""The `http` pool's per-host limit: at most four requests to one host in flight in a
process, while another host's request goes at once."""

from __future__ import annotations

import threading
import time

from workers.http_targets import HostSlots


def test_at_most_four_requests_per_host_are_in_flight() -> None:
    slots = HostSlots(4)
    most: list[int] = []
    release = threading.Event()

    def hold(host: str) -> None:
        with slots.held(host):
            most.append(slots.in_flight("a.example"))
            release.wait(5)

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
