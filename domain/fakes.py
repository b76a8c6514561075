"""Fakes of the domain's ports, for unit tests and for wiring without a broker."""

from __future__ import annotations

from domain.ports import PublishFailed, RunJob


class FakePublisher:
    def __init__(self) -> None:
        self.published: list[RunJob] = []
        self.broken = False

    def publish(self, commands: list[RunJob]) -> None:
        if self.broken:
            raise PublishFailed("the fake broker is down")
        self.published.extend(commands)
