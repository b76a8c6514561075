"""The ``http`` job type's port (``domain.ports.HttpTargets``): each tenant's signing secrets
and private-host allow-list, sent through the outbound client and guard.

A target on a private, loopback or link-local address is reached only when its host is on the
tenant's allow-list (or ``HOPPER_HTTP_JOBS_ALLOW_PRIVATE`` opens every one); whatever webhooks
are allowed plays no part. At most ``PER_HOST`` requests to one host are in flight in a worker
process, so one tenant's slow target cannot take every thread of the pool.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from urllib.parse import urlsplit

from domain.http_targets.service import Signing, TargetSettingsService
from domain.ports import MAX_ANSWER_BODY_BYTES, TargetAnswer, TargetRequest
from workers.outbound import OutboundClient, OutboundGuard, OutboundPolicy
from workers.outbound.client import Reading

PER_HOST = 4
SETTINGS_TTL_SECONDS = 5.0  # how long a worker may use a tenant's settings before reading again
TARGET_BODY = Reading(keep=MAX_ANSWER_BODY_BYTES, read_up_to=MAX_ANSWER_BODY_BYTES + 1, decode=True)


class GuardedTargets:
    def __init__(
        self,
        settings: TargetSettingsService,
        client: OutboundClient,
        policy: OutboundPolicy,
        allow_private: bool,
    ) -> None:
        self._settings = _Recent(settings.signing, SETTINGS_TTL_SECONDS)
        self._client = client
        self._listed = OutboundGuard(replace(policy, allow_private=True))
        self._unlisted = OutboundGuard(replace(policy, allow_private=allow_private))
        self._slots = HostSlots(PER_HOST)

    def signing_secrets(self, tenant_id: str) -> list[str]:
        return list(self._settings.get(tenant_id).secrets)

    def send(self, tenant_id: str, request: TargetRequest) -> TargetAnswer:
        host = (urlsplit(request.url).hostname or "").lower()
        listed = host in self._settings.get(tenant_id).allowed_hosts
        with self._slots.held(host):
            reply = self._client.request(
                request.method,
                request.url,
                request.body,
                request.headers,
                TARGET_BODY,
                total_timeout=request.timeout_seconds,
                guard=self._listed if listed else self._unlisted,
            )
        return TargetAnswer(
            status=reply.status,
            headers=reply.headers,
            body=reply.body,
            truncated=reply.truncated,
            error=None if reply.refused else reply.error,
            refused=(reply.error or "refused").removeprefix("refused: ") if reply.refused else None,
        )


class HostSlots:
    """At most ``per_host`` holders per host at once; the others wait their turn."""

    def __init__(self, per_host: int) -> None:
        self._per_host = per_host
        self._in_flight: Counter[str] = Counter()
        self._changed = threading.Condition()

    def held(self, host: str) -> _Held:
        return _Held(self, host)

    def acquire(self, host: str) -> None:
        with self._changed:
            self._changed.wait_for(lambda: self._in_flight[host] < self._per_host)
            self._in_flight[host] += 1

    def release(self, host: str) -> None:
        with self._changed:
            self._in_flight[host] -= 1
            if self._in_flight[host] <= 0:
                del self._in_flight[host]
            self._changed.notify_all()

    def in_flight(self, host: str) -> int:
        with self._changed:
            return self._in_flight[host]


class _Held:
    def __init__(self, slots: HostSlots, host: str) -> None:
        self._slots = slots
        self._host = host

    def __enter__(self) -> None:
        self._slots.acquire(self._host)

    def __exit__(self, *_exc: object) -> None:
        self._slots.release(self._host)


class _Recent:
    """A tenant's settings as read at most ``ttl`` seconds ago."""

    def __init__(self, read: Callable[[str], Signing], ttl: float) -> None:
        self._read = read
        self._ttl = ttl
        self._lock = threading.Lock()
        self._kept: dict[str, tuple[float, Signing]] = {}

    def get(self, tenant_id: str) -> Signing:
        now = time.monotonic()
        with self._lock:
            found = self._kept.get(tenant_id)
        if found is not None and now - found[0] < self._ttl:
            return found[1]
        fresh = self._read(tenant_id)
        with self._lock:
            self._kept[tenant_id] = (now, fresh)
        return fresh
