"""One function builds the wiring (settings, engine, unit of work, publisher, services) for the
web app, the worker, the scheduler and the CLI alike. Tests call it with fakes or real services."""

from __future__ import annotations

import atexit
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from domain import queues
from domain.db import make_engine
from domain.dispatch.limits import KeyLimitService
from domain.dispatch.service import DispatchService
from domain.dispatch.waiting import WaitingRules
from domain.dispatch.weights import WeightService
from domain.http_targets.service import TargetSettingsService
from domain.idempotency import BindClaim, IdempotencyService
from domain.job_types import Registry, registry_for
from domain.key_cache import KeyCache
from domain.ports import Command, JobWaiter, Publisher, QueueConsumers, UrlRefused
from domain.queue_control.service import QueueService
from domain.quotas import QuotaCheck, Quotas, QuotaService
from domain.schedules.firing import ScheduleFiring
from domain.schedules.service import ScheduleService
from domain.secrets import SecretBox, local_key
from domain.services.access import REFRESH_SECONDS, AccessService
from domain.services.bulk import BulkJobs
from domain.services.delivery import DeliveryService
from domain.services.execution import ExecutionService
from domain.services.jobs import JobService
from domain.services.metrics import MetricsService
from domain.services.scheduling import Retention, SchedulerService
from domain.services.webhooks import WebhookService
from domain.settings import Settings
from domain.unit_of_work import UnitOfWork
from hopper import __version__
from hopper.notifications import PollingWaiter, PostgresListener
from hopper.read_routing import Positions, ReplicaReads
from workers.bell import PostgresBell, Ringing, SilentBell
from workers.outbound import OutboundClient, OutboundGuard, OutboundPolicy, Refused
from workers.relay import Relay

WEBHOOK_TIMEOUT_SECONDS = 10.0
_COMMIT_HOOKS = (BindClaim(),)


@dataclass
class Container:
    settings: Settings
    engine: Engine
    publisher: Publisher
    registry: Registry
    waiter: JobWaiter
    celery: Any = None
    consumers: QueueConsumers = field(default_factory=lambda: UnknownConsumers())
    key_cache: KeyCache = field(default_factory=lambda: KeyCache(refresh_after=REFRESH_SECONDS))
    session_factory: sessionmaker[Session] = field(init=False)

    def __post_init__(self) -> None:
        self.session_factory = sessionmaker(self.engine, expire_on_commit=False)
        # Reads that change nothing run outside a transaction on PostgreSQL: no BEGIN and no
        # ROLLBACK around their one statement (SQLite keeps its own locking).
        readers = self.engine
        if self.settings.is_postgres:
            readers = self.engine.execution_options(isolation_level="AUTOCOMMIT")
        self.read_session_factory = sessionmaker(readers, expire_on_commit=False)
        self.replica = _replica(self.settings, self.engine)
        if self.replica is not None:
            self.replica_session_factory = sessionmaker(
                self.replica.replica.execution_options(isolation_level="AUTOCOMMIT"),
                expire_on_commit=False,
            )
        self.box = SecretBox(_encryption_keys(self.settings))
        defaults = _quota_defaults(self.settings)
        self.quota_check = QuotaCheck(defaults)
        self.quotas = QuotaService(self.uow, defaults)
        self.guard = OutboundGuard(OutboundPolicy.from_settings(self.settings))
        self.jobs = JobService(
            self.uow,
            self.registry,
            self.waiter,
            self.settings.hard_limit_margin_seconds,
            reads=self.reads,
            box=self.box,
            quotas=self.quota_check,
        )
        self.access = AccessService(
            self.uow, self.key_cache, reads=self.reads, quotas=self.quota_check
        )
        self.execution = ExecutionService(self.uow, self.registry, self.settings, self.box)
        self.deliveries = DeliveryService(
            self.uow, self.box, self.settings.webhook_retry_schedule, WEBHOOK_TIMEOUT_SECONDS
        )
        self.idempotency = IdempotencyService(
            self.uow, self.box, timedelta(hours=self.settings.retention_idempotency_hours)
        )
        rules = WaitingRules.of(self.registry)
        self.metrics = MetricsService(self.reads, self.job_queues, rules)
        self.queue_control = QueueService(self.uow, self.reads, self.job_queues, rules)
        self.http_targets = TargetSettingsService(self.uow, self.box)
        self.schedules = ScheduleService(self.uow, self.registry, self.box, reads=self.reads)
        self.schedule_firing = ScheduleFiring(
            self.uow,
            self.registry,
            self.settings.hard_limit_margin_seconds,
            timedelta(days=self.settings.retention_jobs_days),
        )
        self.bulk = BulkJobs(self.reads, self.jobs)
        self.webhooks = WebhookService(
            self.uow,
            self.box,
            _UrlCheck(self.guard),
            self.deliveries.final_step,
            reads=self.reads,
            quotas=self.quota_check,
        )
        self.dispatch = DispatchService(
            self.uow,
            self.settings.dispatch_window,
            self.settings.republish_after_seconds,
            self.settings.hard_limit_margin_seconds,
            self.registry,
        )
        self.weights = WeightService(self.uow)
        self.key_limits = KeyLimitService(self.uow)
        self.scheduling = SchedulerService(
            self.uow, self.settings.republish_after_seconds, _retention(self.settings)
        )

    def outbound(self) -> OutboundClient:
        """The guarded HTTP client for deliveries (one per process: it pools connections)."""
        return OutboundClient(
            self.guard, total_timeout=WEBHOOK_TIMEOUT_SECONDS, user_agent=f"Hopper/{__version__}"
        )

    def listen(self) -> None:
        """A web process hears of finished jobs and changed keys from now on."""
        if isinstance(self.waiter, PostgresListener):
            self.waiter.start()

    def relay(self) -> None:
        """From now on this process publishes from a background thread (``workers.relay``): a
        request that commits a job answers without waiting on the broker. At exit the relay
        publishes what is still waiting."""
        if isinstance(self.publisher, Relay):
            return
        relay = Relay(self.publisher, self._hand_back)
        relay.start()
        self.publisher = relay
        atexit.register(relay.close, 3 * self.settings.publish_timeout_seconds)

    def _hand_back(self, commands: list[Command]) -> None:
        with self.uow() as uow:
            uow.hand_back(commands)

    def uow(self) -> UnitOfWork:
        if self.replica is not None:
            self.replica.touched_primary()
        return UnitOfWork(self.session_factory, self.publisher, _COMMIT_HOOKS)

    def reads(self) -> UnitOfWork:
        """A unit of work for reads alone: one statement, one round trip; on the replica when
        it has what the request's key has seen (``hopper.read_routing``)."""
        if self.replica is not None:
            if self.replica.may_read():
                return UnitOfWork(self.replica_session_factory, self.publisher)
            self.replica.touched_primary()
        return UnitOfWork(self.read_session_factory, self.publisher)

    def replica_lag(self) -> float | None:
        return None if self.replica is None else self.replica.lag_seconds()

    def known_queues(self) -> list[str]:
        """Every queue a worker may be asked to consume: each job type's, and the deliveries'."""
        return sorted({*self.job_queues(), queues.WEBHOOKS})

    def counted_metrics(self) -> Any:
        """What this process tree counted (``hopper.telemetry``)."""
        from hopper.telemetry import registry

        return registry()

    def job_queues(self) -> list[str]:
        """Every queue of a job type (the deliveries' queue is not one)."""
        return sorted(set(queues.JOB_QUEUES) | self.registry.queues)

    def consumer_counts(self) -> dict[str, int] | None:
        return self.consumers.consumers(self.known_queues())

    def starved_queues(self) -> list[str]:
        """Queues with due work and no consumer (empty where the broker cannot tell)."""
        return [starved.queue for starved in self.metrics.starved_queues(self.consumers)]

    def health(self) -> dict[str, str]:
        return {"database": self._database(), "broker": self._broker(), "redis": self._redis()}

    def _database(self) -> str:
        try:
            with self.engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        except Exception as exc:
            return f"unavailable: {type(exc).__name__}"
        return "ok"

    def _broker(self) -> str:
        if self.celery is None:
            return "not configured"
        try:
            with self.celery.connection_for_write() as connection:
                connection.ensure_connection(max_retries=0, timeout=1)  # one try
        except Exception as exc:
            return f"unavailable: {type(exc).__name__}"
        return "ok"

    def _redis(self) -> str:
        if not self.settings.redis_url:
            return "not configured"
        import redis

        try:
            redis.Redis.from_url(self.settings.redis_url, socket_timeout=1).ping()
        except Exception as exc:
            return f"unavailable: {type(exc).__name__}"
        return "ok"


def bootstrap(
    settings: Settings | None = None,
    *,
    publisher: Publisher | None = None,
    waiter: JobWaiter | None = None,
    engine: Engine | None = None,
    pool_size: int = 5,
) -> Container:
    settings = settings or Settings.from_env()
    key_cache = KeyCache(refresh_after=REFRESH_SECONDS)
    celery = None
    consumers: QueueConsumers = UnknownConsumers()
    if publisher is None:
        from workers.celery_app import create_celery
        from workers.consumers import BrokerConsumers
        from workers.publisher import CeleryPublisher

        celery = create_celery(settings, publisher=True)
        publisher = CeleryPublisher(celery, settings.publish_timeout_seconds)
        consumers = BrokerConsumers(celery, settings.broker_url, settings.publish_timeout_seconds)
        engine = engine or make_engine(settings, pool_size=pool_size)
        bell = PostgresBell(engine) if settings.is_postgres else SilentBell()
        publisher = Ringing(publisher, bell)
    return Container(
        settings=settings,
        engine=engine or make_engine(settings, pool_size=pool_size),
        publisher=publisher,
        registry=registry_for(settings.job_types),
        waiter=waiter or _waiter(settings, key_cache),
        celery=celery,
        consumers=consumers,
        key_cache=key_cache,
    )


def _replica(settings: Settings, primary: Engine) -> ReplicaReads | None:
    if settings.database_replica_url is None:
        return None
    replica = replace(settings, database_url=settings.database_replica_url)
    engine = make_engine(replica, pool_size=settings.web_threads)
    return ReplicaReads(
        engine, primary, Positions(settings.redis_url), settings.replica_max_lag_seconds
    )


def _waiter(settings: Settings, keys: KeyCache) -> JobWaiter:
    capacity = max(1, settings.web_threads // 2)
    if settings.is_postgres:
        url = settings.listen_database_url or settings.database_url
        return PostgresListener(url, capacity, keys=keys)
    return PollingWaiter(capacity)


class UnknownConsumers:
    """No broker to ask (a stack wired with a fake publisher): consumer counts are unknown."""

    def consumers(self, queues: Sequence[str]) -> dict[str, int] | None:
        return None


class _UrlCheck:
    """The outbound guard as the domain's ``UrlGuard``."""

    def __init__(self, guard: OutboundGuard) -> None:
        self._guard = guard

    def check_url(self, url: str) -> None:
        try:
            self._guard.check_url(url)
        except Refused as refused:
            raise UrlRefused(refused.reason) from None


def _encryption_keys(settings: Settings) -> tuple[str, ...]:
    """The configured keys; the embedded default makes its own under var/."""
    if settings.encryption_keys:
        return settings.encryption_keys
    return (local_key(settings.var_dir / "encryption.key"),)


def _quota_defaults(settings: Settings) -> Quotas:
    return Quotas(
        unfinished_jobs=settings.quota_unfinished_jobs,
        payload_bytes=settings.quota_payload_bytes,
        api_keys=settings.quota_api_keys,
        webhook_endpoints=settings.quota_webhook_endpoints,
    )


def _retention(settings: Settings) -> Retention:
    return Retention(
        jobs=timedelta(days=settings.retention_jobs_days),
        events=timedelta(days=settings.retention_events_days),
        idempotency=timedelta(hours=settings.retention_idempotency_hours),
        audit=timedelta(days=settings.retention_audit_days),
    )
