"""The rules of endpoints and deliveries, without I/O."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime, timedelta

from standardwebhooks import Webhook

from domain.webhooks.model import Endpoint
from domain.webhooks.outbox import event_body
from domain.webhooks.signing import new_secret, signature, signature_header

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def endpoint(**fields: object) -> Endpoint:
    values: dict[str, object] = {
        "id": "whe_1",
        "tenant_id": "ten_1",
        "url": "https://x.example/",
        "description": "",
        "event_types": None,
        "job_types": None,
        "enabled": True,
        "secret_ciphertext": "c1",
        "created_at": NOW,
        "updated_at": NOW,
    }
    values.update(fields)
    return Endpoint(**values)


def test_an_endpoint_failing_for_five_days_is_disabled_and_a_success_resets_the_clock() -> None:
    hook = endpoint()
    hook.failed_delivery(NOW)
    hook.failed_delivery(NOW + timedelta(days=4, hours=23))
    assert hook.enabled
    hook.delivered()
    hook.failed_delivery(NOW + timedelta(days=5))
    assert hook.enabled, "the success restarted the five days"
    hook.failed_delivery(NOW + timedelta(days=10))
    assert not hook.enabled
    assert "5 days" in (hook.disabled_reason or "")


def test_filters_by_event_type_and_job_type() -> None:
    hook = endpoint(event_types=["job.failed"], job_types=["echo"])
    assert hook.wants("job.failed", "echo")
    assert not hook.wants("job.succeeded", "echo")
    assert not hook.wants("job.failed", "hash")
    assert endpoint().wants("job.started", "anything")
    assert not endpoint(enabled=False).wants("job.started", "echo")


def test_after_a_rotation_both_secrets_sign_for_the_overlap_only() -> None:
    hook = endpoint()
    hook.rotate("c2", NOW, timedelta(hours=24))
    assert hook.secrets_in_use(NOW + timedelta(hours=23)) == ["c2", "c1"]
    assert hook.secrets_in_use(NOW + timedelta(hours=24)) == ["c2"]


def test_signatures_follow_the_standard_and_verify_with_the_reference_library() -> None:
    old, new = new_secret(), new_secret()
    assert old.startswith("whsec_") and len(base64.b64decode(old[6:])) == 32
    body = event_body("webhook.test", NOW, {"endpoint_id": "whe_1"})
    timestamp = int(datetime.now(UTC).timestamp())
    expected = base64.b64encode(
        hmac.new(
            base64.b64decode(old[6:]), f"msg_1.{timestamp}.{body}".encode(), hashlib.sha256
        ).digest()
    ).decode()
    assert signature(old, "msg_1", timestamp, body) == "v1," + expected
    headers = {
        "webhook-id": "msg_1",
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature_header([new, old], "msg_1", timestamp, body),
    }
    for secret in (old, new):
        assert Webhook(secret).verify(body, headers)["data"] == {"endpoint_id": "whe_1"}
