"""The real wiring (``hopper.bootstrap``'s container: the unit of work, the repositories, the
services) over SQLite in memory: the embedded default's database, without its file.

For the domain code that works on the session itself (idempotency, webhooks and deliveries,
metrics, the outbox, audit), which the fakes do not model. No network and no file: the engine
keeps one in-memory connection, the publisher is ``FakePublisher`` and the URL guard a stand-in.
The unit of work's clock is the machine's (``datetime.now``), as it is on SQLite.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, create_engine, event, update
from sqlalchemy.pool import StaticPool

import domain.webhooks.model  # noqa: F401  (maps the webhook tables onto Base.metadata)
from domain.auth import Principal
from domain.ids import new_id
from domain.model import AuditEvent, Base, Role
from domain.ports import UrlRefused
from domain.secrets import generate_key
from domain.services.webhooks import WebhookService
from domain.unit_of_work import UnitOfWork
from domain.webhooks.model import Delivery, Endpoint
from hopper.bootstrap import Container, bootstrap
from tests.unit.fakes import FakePublisher, FakeWaiter, fake_settings

SCHEDULE = (10, 60, 600)  # the delivery retry schedule of these tests, in seconds


def memory_engine() -> Engine:
    engine = create_engine(
        "sqlite://", poolclass=StaticPool, connect_args={"check_same_thread": False}
    )

    @event.listens_for(engine, "connect")
    def _foreign_keys(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.execute("PRAGMA foreign_keys=ON")

    Base.metadata.create_all(engine)
    return engine


class FakeGuard:
    """Refuses the URLs it is told to, and remembers every URL it was asked about."""

    def __init__(self) -> None:
        self.checked: list[str] = []
        self.refused: dict[str, str] = {}

    def check_url(self, url: str) -> None:
        self.checked.append(url)
        if url in self.refused:
            raise UrlRefused(self.refused[url])


@dataclass
class MemoryStack:
    publisher: FakePublisher = field(default_factory=FakePublisher)
    guard: FakeGuard = field(default_factory=FakeGuard)
    engine: Engine = field(default_factory=memory_engine)

    def __post_init__(self) -> None:
        settings = fake_settings(encryption_keys=(generate_key(),), webhook_retry_schedule=SCHEDULE)
        self.container: Container = bootstrap(
            settings, publisher=self.publisher, waiter=FakeWaiter(), engine=self.engine
        )
        self.webhooks = WebhookService(
            self.container.uow, self.container.box, self.guard, len(SCHEDULE)
        )

    def uow(self) -> UnitOfWork:
        return self.container.uow()

    def principal(self, role: Role = Role.ADMIN) -> Principal:
        """An API key's principal, in a tenant of its own."""
        tenant = self.container.access.create_tenant(new_id("ten"))
        key = self.container.access.create_key(tenant.id, "tests", role)
        return Principal(tenant_id=tenant.id, key_id=key.record.id, role=role)

    def audit(self, tenant_id: str) -> list[AuditEvent]:
        """The tenant's audit events, oldest first."""
        with self.uow() as uow:
            return list(reversed(uow.keys.audit_page(tenant_id, None, 1000)))

    def endpoint(
        self, principal: Principal, url: str = "https://hooks.example/a", **fields: Any
    ) -> Endpoint:
        return self.webhooks.create(principal, {"url": url, **fields}).endpoint

    def set_rows(self, model: type, row_id: str, **values: Any) -> None:
        """Change stored rows behind the services' back (a clock moved on, a worker crashed)."""
        with self.uow() as uow:
            uow.session.execute(update(model).where(model.id == row_id).values(**values))
            uow.session.commit()

    def delivery(self, delivery_id: str) -> Delivery:
        with self.uow() as uow:
            found = uow.webhooks.delivery_unscoped(delivery_id)
            assert found is not None
            return found

    def stored_endpoint(self, endpoint_id: str) -> Endpoint:
        with self.uow() as uow:
            found = uow.session.get(Endpoint, endpoint_id)
            assert found is not None
            return found
