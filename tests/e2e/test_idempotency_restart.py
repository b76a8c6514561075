"""An idempotent replay survives a restart of the API: the record lives in the database."""

from __future__ import annotations

from pathlib import Path

from tests.services import real_env
from tests.stack import Stack


def test_a_replay_after_an_api_restart_still_replays(
    migrated_database: str, tmp_path: Path
) -> None:
    stack = Stack(real_env(), tmp_path)
    try:
        web = stack.web()
        keys = stack.new_tenant()
        headers = {"Idempotency-Key": "order-42"}
        body = {"type": "echo", "payload": {"message": "once"}}
        first = stack.request("POST", "/v1/jobs", keys["submitter"], json=body, headers=headers)
        assert first.status_code == 202
        web.stop()
        stack.web()
        again = stack.request("POST", "/v1/jobs", keys["submitter"], json=body, headers=headers)
        assert again.status_code == 202
        assert again.headers["Idempotent-Replayed"] == "true"
        assert again.json() == first.json()
        jobs = stack.request("GET", "/v1/jobs", keys["reader"]).json()["data"]
        assert [job["id"] for job in jobs] == [first.json()["id"]]
    finally:
        stack.stop()
