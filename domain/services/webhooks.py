"""Webhook endpoints as their admins manage them: create, read, change, delete, rotate the
secret, send a test event, and follow deliveries. All tenant-scoped."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy.orm.exc import StaleDataError

from domain import audit
from domain.auth import Principal
from domain.errors import Conflict, FieldError, NotFound, ValidationFailed
from domain.ids import looks_like, new_id
from domain.pagination import Page, decode_cursor, paginate
from domain.ports import DeliverWebhook, UrlGuard, UrlRefused
from domain.quotas import QuotaCheck
from domain.secrets import SecretBox
from domain.unit_of_work import UnitOfWork
from domain.webhooks.model import Delivery, DeliveryAttempt, Endpoint
from domain.webhooks.outbox import add_deliveries, new_event
from domain.webhooks.signing import new_secret

ROTATION_OVERLAP = timedelta(hours=24)
RACE_RETRIES = 5
CHANGEABLE = ("url", "description", "event_types", "job_types", "enabled")


@dataclass(frozen=True)
class EndpointWithSecret:
    endpoint: Endpoint
    secret: str


@dataclass(frozen=True)
class DeliveryView:
    """A delivery with its attempt log; reads as the delivery itself otherwise."""

    delivery: Delivery
    attempt_log: list[DeliveryAttempt]

    def __getattr__(self, name: str) -> Any:
        return getattr(self.delivery, name)


class WebhookService:
    def __init__(
        self,
        uow: Callable[[], UnitOfWork],
        box: SecretBox,
        guard: UrlGuard,
        final_step: int,
        reads: Callable[[], UnitOfWork] | None = None,
        quotas: QuotaCheck | None = None,
    ) -> None:
        self._quotas = quotas
        self._uow = uow
        self._reads = reads or uow  # reads alone: outside a transaction, maybe on a replica
        self._box = box
        self._guard = guard
        self._final_step = final_step

    def create(self, principal: Principal, fields: dict[str, Any]) -> EndpointWithSecret:
        self._check_url(fields["url"])
        secret = new_secret()
        with self._uow() as uow:
            tenant = uow.tenants.locked(principal.tenant_id)
            if self._quotas is not None and tenant is not None:
                self._quotas.webhook_endpoints(uow, tenant)
            now = uow.now()
            endpoint = Endpoint(
                id=new_id("whe"),
                tenant_id=principal.tenant_id,
                secret_ciphertext=self._box.seal(secret),
                created_at=now,
                updated_at=now,
                description="",
                enabled=True,
            )
            _apply(endpoint, fields)
            uow.add(endpoint)
            audit.record(
                uow,
                principal.tenant_id,
                "webhook_endpoint.create",
                "webhook_endpoint",
                endpoint.id,
                url=endpoint.url,
            )
            uow.commit()
            return EndpointWithSecret(endpoint, secret)

    def list(self, principal: Principal, limit: int, cursor: str | None) -> Page[Endpoint]:
        before = decode_cursor(cursor, "whe") if cursor else None
        with self._uow() as uow:
            return paginate(
                uow.webhooks.endpoint_page(principal.tenant_id, before, limit + 1), limit
            )

    def get(self, principal: Principal, endpoint_id: str) -> Endpoint:
        with self._uow() as uow:
            return self._find(uow, principal, endpoint_id)

    def update(self, principal: Principal, endpoint_id: str, fields: dict[str, Any]) -> Endpoint:
        """Change an endpoint; the URL it will be called at is checked as on creation.

        The guard's rules (or what a name resolves to) may have changed since the stored URL
        was checked, so it is checked again whenever the endpoint stays or becomes enabled.
        Disabling needs no check: nothing is sent to a disabled endpoint.
        """
        # Checked outside the transaction: a slow resolver must not hold a connection.
        checked = _url_to_check(self.get(principal, endpoint_id), fields)
        if checked is not None:
            self._check_url(checked)
        with self._uow() as uow:
            endpoint = self._find(uow, principal, endpoint_id)
            url = _url_to_check(endpoint, fields)
            if url is not None and url != checked:  # changed meanwhile by another request
                self._check_url(url)
            _apply(endpoint, fields)
            if fields.get("enabled"):
                endpoint.disabled_reason = None
                endpoint.failing_since = None
            endpoint.updated_at = uow.now()
            audit.record(
                uow,
                principal.tenant_id,
                "webhook_endpoint.update",
                "webhook_endpoint",
                endpoint.id,
                changed=sorted(fields),
            )
            uow.commit()
            return endpoint

    def delete(self, principal: Principal, endpoint_id: str) -> None:
        with self._uow() as uow:
            uow.session.delete(self._find(uow, principal, endpoint_id))
            audit.record(
                uow, principal.tenant_id, "webhook_endpoint.delete", "webhook_endpoint", endpoint_id
            )
            uow.commit()

    def rotate_secret(self, principal: Principal, endpoint_id: str) -> EndpointWithSecret:
        secret = new_secret()
        with self._uow() as uow:
            endpoint = self._find(uow, principal, endpoint_id)
            endpoint.rotate(self._box.seal(secret), uow.now(), ROTATION_OVERLAP)
            audit.record(
                uow,
                principal.tenant_id,
                "webhook_endpoint.rotate_secret",
                "webhook_endpoint",
                endpoint.id,
            )
            uow.commit()
            return EndpointWithSecret(endpoint, secret)

    def send_test(self, principal: Principal, endpoint_id: str, request_id: str | None) -> str:
        """A ``webhook.test`` event to this endpoint alone, sent now."""
        with self._uow() as uow:
            endpoint = self._find(uow, principal, endpoint_id)
            now = uow.now()
            event = new_event(
                principal.tenant_id,
                "webhook.test",
                {"endpoint_id": endpoint.id},
                now,
                None,
                request_id,
            )
            for delivery_id in add_deliveries(uow.session, event, [endpoint], now):
                uow.publish_after_commit(DeliverWebhook(delivery_id, request_id))
            audit.record(
                uow,
                principal.tenant_id,
                "webhook_endpoint.test",
                "webhook_endpoint",
                endpoint.id,
                event_id=event.id,
            )
            uow.commit()
            return event.id

    def deliveries(
        self, principal: Principal, endpoint_id: str, limit: int, cursor: str | None
    ) -> Page[DeliveryView]:
        before = decode_cursor(cursor, "dlv") if cursor else None
        with self._reads() as uow:
            self._find(uow, principal, endpoint_id)
            page = paginate(uow.webhooks.delivery_page(endpoint_id, before, limit + 1), limit)
            logs = uow.webhooks.attempt_logs([d.id for d in page.items])
            views = [DeliveryView(d, logs[d.id]) for d in page.items]
            return Page(views, page.next_cursor)

    def delivery(self, principal: Principal, endpoint_id: str, delivery_id: str) -> DeliveryView:
        with self._reads() as uow:
            delivery = self._find_delivery(uow, principal, endpoint_id, delivery_id)
            return DeliveryView(delivery, uow.webhooks.attempt_logs([delivery.id])[delivery.id])

    def redeliver(self, principal: Principal, endpoint_id: str, delivery_id: str) -> DeliveryView:
        for _ in range(RACE_RETRIES):
            try:
                return self._redeliver(principal, endpoint_id, delivery_id)
            except StaleDataError:
                continue  # a delivery worker changed it meanwhile: look again
        raise Conflict(f"delivery {delivery_id} is changing too fast; try again")

    def _redeliver(self, principal: Principal, endpoint_id: str, delivery_id: str) -> DeliveryView:
        with self._uow() as uow:
            delivery = self._find_delivery(uow, principal, endpoint_id, delivery_id)
            event = uow.webhooks.event(delivery.event_id)
            delivery.redeliver(uow.now(), self._final_step)
            uow.publish_after_commit(
                DeliverWebhook(delivery.id, event.request_id if event else None)
            )
            audit.record(
                uow,
                principal.tenant_id,
                "webhook_delivery.redeliver",
                "webhook_delivery",
                delivery.id,
            )
            uow.commit()
            return DeliveryView(delivery, uow.webhooks.attempt_logs([delivery.id])[delivery.id])

    def _check_url(self, url: str) -> None:
        try:
            self._guard.check_url(url)
        except UrlRefused as refused:
            raise ValidationFailed([FieldError("url", f"Refused: {refused.reason}.")]) from None

    def _find(self, uow: UnitOfWork, principal: Principal, endpoint_id: str) -> Endpoint:
        endpoint = (
            uow.webhooks.endpoint(principal.tenant_id, endpoint_id)
            if looks_like("whe", endpoint_id)
            else None
        )
        if endpoint is None:
            raise NotFound(f"no webhook endpoint {endpoint_id}")
        return endpoint

    def _find_delivery(
        self, uow: UnitOfWork, principal: Principal, endpoint_id: str, delivery_id: str
    ) -> Delivery:
        self._find(uow, principal, endpoint_id)
        delivery = (
            uow.webhooks.delivery(endpoint_id, delivery_id)
            if looks_like("dlv", delivery_id)
            else None
        )
        if delivery is None:
            raise NotFound(f"no delivery {delivery_id}")
        return delivery


def _url_to_check(endpoint: Endpoint, fields: dict[str, Any]) -> str | None:
    """The URL a change must pass the guard with: a new one always, the stored one when the
    endpoint will be enabled after the change; None when there is nothing to check."""
    if "url" in fields:
        return str(fields["url"])
    if fields.get("enabled", endpoint.enabled):
        return endpoint.url
    return None


def _apply(endpoint: Endpoint, fields: dict[str, Any]) -> None:
    for name in CHANGEABLE:
        if name in fields:
            setattr(endpoint, name, fields[name])
