"""The scenarios that run whole flows on Hopper alone (they have no bare peer): a steady stream
of jobs from submission to end, webhook deliveries, and each process kind's peak memory."""

from __future__ import annotations

import json
import time
from datetime import datetime
from pathlib import Path

from sqlalchemy.engine import Engine

from bench.paced import created_to_finished_ms, finished, paced
from bench.scenarios import BATCH_SIZE, ECHO
from bench.stacks import workers
from domain import queues
from tests.receiver import Receiver
from tests.stack import Stack, wait_until


def end_to_end(
    stack: Stack, key: str, db: Engine, rate: float, seconds: float
) -> tuple[list[float], float]:
    """`rate` `echo` jobs a second for `seconds`: each span from creation to end (ms), and the
    peak memory of the job pool's processes (MB)."""
    with workers(stack, queues.DEFAULT) as (worker,):
        time.sleep(2)  # the pool is up before the clock starts

        def send() -> str:
            answer = stack.request("POST", "/v1/jobs", key, json=ECHO)
            assert answer.status_code == 202, answer.text
            return str(answer.json()["id"])

        ids = paced(send, rate, seconds)
        wait_until(lambda: finished(db, ids) == len(ids), 120, "the paced jobs to end", worker)
        pool = peak_rss_mb(worker.pid)
        pool.pop(worker.pid)
        return created_to_finished_ms(db, ids), max(pool.values())


def _endpoint(stack: Stack, admin: str, receiver: Receiver) -> str:
    body = {"url": receiver.url, "event_types": ["job.succeeded"]}
    answer = stack.request("POST", "/v1/webhook-endpoints", admin, json=body)
    assert answer.status_code == 201, answer.text
    return str(answer.json()["id"])


def _arrival_ms(receiver: Receiver) -> list[float]:
    """For each delivery, from the job's end (in the event) to its arrival at the receiver."""
    spans = []
    for received in receiver.received:
        ended = datetime.fromisoformat(json.loads(received.body)["data"]["finished_at"])
        spans.append((received.at - ended.timestamp()) * 1000)
    return spans


def webhooks(
    stack: Stack, keys: dict[str, str], endpoints: int, jobs: int, seconds: float
) -> tuple[list[float], float]:
    """Latency from a job's end to its delivery (one endpoint, 10 jobs a second), then
    deliveries a second to `endpoints` endpoints when `jobs` jobs end at once."""
    receivers = [Receiver() for _ in range(endpoints)]
    made: list[str] = []
    try:
        with workers(stack, queues.DEFAULT, queues.WEBHOOKS):
            made.append(_endpoint(stack, keys["admin"], receivers[0]))
            time.sleep(2)
            ids = paced(lambda: _submit(stack, keys["submitter"]), 10, seconds)
            receivers[0].wait_for(len(ids), 120)
            latency = _arrival_ms(receivers[0])
            receivers[0].received.clear()
            made += [_endpoint(stack, keys["admin"], r) for r in receivers[1:]]
            for _ in range(jobs // BATCH_SIZE):
                body = {"jobs": [ECHO] * BATCH_SIZE}
                assert stack.request("POST", "/v1/jobs/batch", keys["submitter"], json=body).ok
            for receiver in receivers:
                receiver.wait_for(jobs, 600)
            arrivals = sorted(r.at for receiver in receivers for r in receiver.received)
            rate = (len(arrivals) - 1) / (arrivals[-1] - arrivals[0])
    finally:
        for endpoint in made:
            stack.request("DELETE", f"/v1/webhook-endpoints/{endpoint}", keys["admin"])
        for receiver in receivers:
            receiver.close()
    return latency, rate


def _submit(stack: Stack, key: str) -> str:
    answer = stack.request("POST", "/v1/jobs", key, json=ECHO)
    assert answer.status_code == 202, answer.text
    return str(answer.json()["id"])


def peak_rss_mb(pid: int) -> dict[int, float]:
    """The peak resident memory (VmHWM) of a process and each of its descendants, by pid."""
    peaks = {}
    for each in [pid, *_descendants(pid)]:
        try:
            status = Path(f"/proc/{each}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmHWM:"):
                peaks[each] = int(line.split()[1]) / 1024
    return peaks


def _descendants(pid: int) -> list[int]:
    found = []
    for child in _children(pid):
        found += [child, *_descendants(child)]
    return found


def _children(pid: int) -> list[int]:
    children = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            children += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return children
