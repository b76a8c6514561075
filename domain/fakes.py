"""Fakes of the domain's ports, for unit tests and for wiring without a broker."""

from __future__ import annotations

from domain.ports import Command, PublishFailed


class FakePublisher:
    def __init__(self) -> None:
        self.published: list[Command] = []
        self.broken = False

    def publish(self, commands: list[Command]) -> None:
        if self.broken:
            raise PublishFailed("the fake broker is down")
        self.published.extend(commands)
