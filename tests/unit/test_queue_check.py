"""``hopper queues check``: a Procfile's or a compose file's workers must serve every queue, a
plugin's own among them, and name no queue that does not exist."""

from __future__ import annotations

from pathlib import Path

from hopper.queue_check import problems, served_queues

EVERY = ["default", "long", "reports", "webhooks"]


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_a_procfile_missing_a_plugin_queue_is_named(tmp_path: Path) -> None:
    procfile = write(
        tmp_path,
        "Procfile",
        "web: hopper serve\nworker: hopper worker -Q default,long\n"
        "# a comment\nwebhooks: hopper worker -Q webhooks\n",
    )
    assert problems([procfile], EVERY) == [f"{procfile}: no worker listens to the queue reports"]


def test_a_pool_for_the_new_queue_or_a_plain_worker_serves_it(tmp_path: Path) -> None:
    pooled = write(
        tmp_path,
        "Procfile",
        "worker: hopper worker -Q default,long\nreports: hopper worker --queues reports\n"
        "webhooks: hopper worker -Q webhooks\n",
    )
    plain = write(tmp_path, "Procfile.plain", "web: hopper serve\nall: hopper worker -c 4\n")
    assert problems([pooled, plain], EVERY) == []


def test_a_compose_file_is_read_as_yaml(tmp_path: Path) -> None:
    compose = write(
        tmp_path,
        "compose.yml",
        "services:\n"
        "  worker:\n"
        "    command: worker -Q default,long,reports\n"
        "  webhooks: {command: [worker, -Q, webhooks, -c, '8']}\n"
        "  flower: {command: celery flower}\n"
        "  redis: {image: redis:7}\n",
    )
    assert problems([compose], EVERY) == []
    compose.write_text("services:\n  worker:\n    command: worker -Q default,lnog,webhooks\n")
    assert problems([compose], EVERY) == [
        f"{compose} worker: listens to unknown queues lnog",
        f"{compose}: no worker listens to the queue long",
        f"{compose}: no worker listens to the queue reports",
    ]


def test_only_worker_commands_serve_queues() -> None:
    assert served_queues(["serve"], EVERY) is None
    assert served_queues(["worker"], EVERY) == EVERY
    assert served_queues(["worker", "-c", "2", "-Q", "long, reports"], EVERY) == ["long", "reports"]
