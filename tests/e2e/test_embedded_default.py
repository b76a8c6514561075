"""`make run`'s embedded default (SQLite, the serverless broker) must keep working: the three
processes take an echo job to succeeded with no PostgreSQL, RabbitMQ or Redis configured."""

from __future__ import annotations

from pathlib import Path

from tests.stack import Stack


def test_embedded_default_runs_a_job(tmp_path: Path) -> None:
    env = {
        "HOPPER_VAR_DIR": str(tmp_path / "var"),
        "HOPPER_OUTBOUND_ALLOWED_NETWORKS": "127.0.0.0/8",
    }
    stack = Stack(env, tmp_path)
    for name in ("DATABASE_URL", "BROKER_URL", "REDIS_URL"):
        stack.env.pop(name, None)
    try:
        stack.cli("migrate")
        stack.cli("migrate")  # safe to run twice
        keys = stack.new_tenant()
        stack.web()
        stack.worker(concurrency=1)
        stack.scheduler()
        response = stack.request(
            "POST",
            "/v1/jobs",
            keys["submitter"],
            json={"type": "echo", "payload": {"message": "embedded"}},
        )
        assert response.status_code == 202
        job = stack.wait_for_job(response.json()["id"], keys["reader"], timeout=60)
        assert job["status"] == "succeeded", stack.logs()
        assert job["result"] == {"message": "embedded"}
        assert (tmp_path / "var" / "hopper.sqlite3").exists()
    finally:
        stack.stop()
