"""The default rate limits on a real stack: a well-behaved client's bursts all pass, however fast
they go, and a runaway loop is stopped."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis
import requests
from limits import parse_many

from domain.settings import RATE_LIMIT_CREATE
from tests.services import REDIS_DB, real_env
from tests.stack import Stack

ECHO = {"type": "echo", "payload": {"message": "x"}}
LIMIT_VARIABLES = ("HOPPER_RATE_LIMIT_DEFAULT", "HOPPER_RATE_LIMIT_CREATE")


@pytest.fixture(scope="module")
def stack(migrated_database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    url = f"redis://127.0.0.1:6379/{int(REDIS_DB) + 3}"
    redis.Redis.from_url(url).flushdb()
    env = {k: v for k, v in real_env(REDIS_URL=url).items() if k not in LIMIT_VARIABLES}
    running = Stack(env, tmp_path_factory.mktemp("limits"))
    for name in LIMIT_VARIABLES:  # the defaults, not what the test environment may carry
        running.env.pop(name, None)
    try:
        running.web()
        yield running
    finally:
        running.stop()


def post(session: requests.Session, stack: Stack, key: str, path: str, body: dict) -> int:
    response = session.post(
        stack.base_url + path, json=body, headers={"Authorization": f"Bearer {key}"}, timeout=30
    )
    return response.status_code


def test_a_burst_of_sequential_then_concurrent_submits_then_a_new_key_all_pass(
    stack: Stack,
) -> None:
    keys = stack.new_tenant()
    admin = keys["admin"]
    session = requests.Session()
    sequential = [post(session, stack, admin, "/v1/jobs", ECHO) for _ in range(200)]
    with ThreadPoolExecutor(50) as pool:
        concurrent = list(
            pool.map(lambda _: post(requests.Session(), stack, admin, "/v1/jobs", ECHO), range(50))
        )
    key = post(session, stack, admin, "/v1/api-keys", {"name": "after", "role": "reader"})
    assert sequential == [202] * 200
    assert concurrent == [202] * 50
    assert key == 201


def test_a_loop_at_twice_the_creating_limit_is_refused_with_retry_after(stack: Stack) -> None:
    (limit,) = parse_many(RATE_LIMIT_CREATE)
    window = limit.get_expiry()
    key = stack.new_tenant()["submitter"]
    invalid = json.dumps({"type": "echo", "payload": {}})  # cheap: refused 422 once counted
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}

    def send(count: int) -> list[tuple[float, float, int, str | None]]:
        session, answers = requests.Session(), []
        for _ in range(count):
            sent = time.time()  # the counter's windows are aligned on the (shared) wall clock
            response = session.post(
                f"{stack.base_url}/v1/jobs", data=invalid, headers=headers, timeout=30
            )
            answered = time.time()
            status, after = response.status_code, response.headers.get("Retry-After")
            answers.append((sent, answered, status, after))
        return answers

    threads = 8
    with ThreadPoolExecutor(threads) as pool:
        parts = pool.map(send, [2 * limit.amount // threads + 1] * threads)
        answers = sorted(answer for part in parts for answer in part)
    first_window = [a for a in answers if a[0] < answers[0][0] + window]
    assert len(answers) >= 2 * limit.amount
    assert len(first_window) > limit.amount + threads, (
        f"the loop must outrun the limit: {len(first_window)} sent in the first {window} s"
    )
    assert {status for _, _, status, _ in answers} == {422, 429}
    # What the sliding-window counter promises (api.rate_counter): never more than the limit in
    # a window-aligned span. (A span that starts inside one window may hold more: the next
    # window lets through as much of the limit as the share of the previous one behind it.)
    # The server counts a request at some instant between its sending and its answer, so only
    # a request whose whole round trip lies inside one window is surely counted in it.
    let_through: dict[int, int] = {}
    for sent, answered, status, _ in answers:
        if status != 429 and int(sent // window) == int(answered // window):
            aligned = int(sent // window)
            let_through[aligned] = let_through.get(aligned, 0) + 1
    assert max(let_through.values()) <= limit.amount, let_through
    passed = sum(1 for _, _, status, _ in answers if status != 429)
    assert passed < len(answers)  # and the loop was refused
    refused = [after for _, _, status, after in answers if status == 429]
    assert all(after is not None and int(after) > 0 for after in refused)
