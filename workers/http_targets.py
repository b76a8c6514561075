"""The ``http`` job type's port (``domain.ports.HttpTargets``): each tenant's signing secrets
and private-host allow-list, sent through the outbound client and guard.

A target on a private, loopback or link-local address is reached only when its host is on the
tenant's allow-list (or ``HOPPER_HTTP_JOBS_ALLOW_PRIVATE`` opens every one); whatever webhooks
are allowed plays no part. At most ``PER_HOST`` requests to one host are in flight in a worker
process, so that a slow or overwhelmed host gets no more than that of it. A job whose host is at
the limit waits for a slot, on its thread, within its own timeout: it never sends after its
attempt has ended, and a cancellation stops the wait.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from urllib.parse import urlsplit

from domain.context import CancellationToken, JobCanceled
from domain.http_targets.service import Signing, TargetSettingsService, canonical_host
from domain.ports import MAX_ANSWER_BODY_BYTES, TargetAnswer, TargetRequest
from workers.outbound import OutboundClient, OutboundGuard, OutboundPolicy
from workers.outbound.client import Reading

PER_HOST = 4
CANCEL_CHECK_SECONDS = 0.25
MIN_SEND_SECONDS = 0.1  # what is left of a timeout after the wait, at the least
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

    def send(
        self, tenant_id: str, request: TargetRequest, cancellation: CancellationToken
    ) -> TargetAnswer:
        host = canonical_host(urlsplit(request.url).hostname or "")
        listed = host in self._settings.get(tenant_id).allowed_hosts
        started = time.monotonic()
        # The wait for a slot counts against the request's timeout, which ends by the job's
        # deadline: a request never goes after the attempt it belongs to has ended.
        if not self._slots.acquire(host, request.timeout_seconds, cancellation):
            _stop_if_canceled(cancellation)
            return TargetAnswer(
                status=None,
                headers={},
                body=b"",
                truncated=False,
                error=f"{PER_HOST} requests to {host} were in flight for the whole timeout",
            )
        try:
            _stop_if_canceled(cancellation)
            left = request.timeout_seconds - (time.monotonic() - started)
            reply = self._client.request(
                request.method,
                request.url,
                request.body,
                request.headers,
                TARGET_BODY,
                total_timeout=max(left, MIN_SEND_SECONDS),
                guard=self._listed if listed else self._unlisted,
            )
        finally:
            self._slots.release(host)
        return TargetAnswer(
            status=reply.status,
            headers=reply.headers,
            body=reply.body,
            truncated=reply.truncated,
            error=None if reply.refused else reply.error,
            refused=(reply.error or "refused").removeprefix("refused: ") if reply.refused else None,
        )


def _stop_if_canceled(cancellation: CancellationToken) -> None:
    if cancellation.requested:
        raise JobCanceled(cancellation.reason or "canceled")


class HostSlots:
    """At most ``per_host`` holders per host at once; the others wait their turn, for as long as
    they may."""

    def __init__(self, per_host: int) -> None:
        self._per_host = per_host
        self._in_flight: Counter[str] = Counter()
        self._changed = threading.Condition()

    def acquire(
        self, host: str, timeout: float, cancellation: CancellationToken | None = None
    ) -> bool:
        """Take one of the host's slots within ``timeout`` seconds; False when none came free in
        time or ``cancellation`` was set meanwhile."""
        ends = time.monotonic() + timeout
        with self._changed:
            while self._in_flight[host] >= self._per_host:
                left = ends - time.monotonic()
                if left <= 0 or (cancellation is not None and cancellation.requested):
                    return False
                # A release notifies at once; the slice bounds how late a cancellation is seen.
                self._changed.wait(min(left, CANCEL_CHECK_SECONDS))
            self._in_flight[host] += 1
            return True

    def release(self, host: str) -> None:
        with self._changed:
            self._in_flight[host] -= 1
            if self._in_flight[host] <= 0:
                del self._in_flight[host]
            self._changed.notify_all()

    def in_flight(self, host: str) -> int:
        with self._changed:
            return self._in_flight[host]


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
