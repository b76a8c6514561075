"""``hopper queues check``: a Procfile's or a compose file's workers must serve every queue, a
plugin's own among them, and name no queue that does not exist."""

from __future__ import annotations

from pathlib import Path

import pytest

from domain.settings import ConfigError
from hopper.cli import main
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


@pytest.mark.parametrize("argv", [["-Qlong"], ["-Q=long"], ["--queues=long"], ["--queues", "long"]])
def test_every_spelling_of_the_queues_option_is_read(argv: list[str]) -> None:
    assert served_queues(["worker", "-c", "2", *argv], EVERY) == ["long"]


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("Procfile", "worker: hopper worker -Q 'long\n", "line 1: No closing quotation"),
        ("compose.yml", "services: [worker]\n", "`services` is not a mapping"),
        ("compose.yml", "services:\n  worker: worker -Q long\n", "service worker: not a mapping"),
        ("compose.yml", "services:\n  worker: {command: 7}\n", "`command` is not a string"),
    ],
)
def test_a_file_that_cannot_be_read_is_one_line(
    tmp_path: Path, name: str, text: str, expected: str
) -> None:
    path = write(tmp_path, name, text)
    with pytest.raises(ConfigError, match=expected):
        problems([path], EVERY)


def test_a_missing_file_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot be read: FileNotFoundError"):
        problems([tmp_path / "Procfile"], EVERY)


def test_with_no_file_here_or_named_the_check_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["queues", "check"]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.endswith("no Procfile or docker-compose.yml here: name the files to check"), line
