"""Settings: read once from the environment at start, typed and validated.

Every process builds one ``Settings`` through ``Settings.from_env`` and passes it down; nothing else
reads the environment. A bad value raises ``ConfigError`` naming the variable, and the entrypoint
turns that into one clear line and a non-zero exit.
"""

from __future__ import annotations

import ipaddress
import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from domain.secrets import valid_key


class ConfigError(Exception):
    """A configuration value is missing or malformed."""

    def __init__(self, variable: str, message: str) -> None:
        super().__init__(f"{variable}: {message}")
        self.variable = variable


# Windows long enough that a well-behaved client's bursts always fit, however fast each request
# is answered: 200 sequential submits, 50 concurrent requests, a batch and then a key.
RATE_LIMIT_DEFAULT = "2000 per 10 seconds"
RATE_LIMIT_CREATE = "500 per 10 seconds"
RATE_LIMIT_AUTH_FAILURES = "20/minute"

_RATE = re.compile(r"^\s*\d+\s*(/|per)\s*\d*\s*(second|minute|hour|day)s?\s*$", re.IGNORECASE)


def _boolean(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError("expected true or false")


def _positive_int(value: str) -> int:
    number = int(value)
    if number < 1:
        raise ValueError("expected a whole number of at least 1")
    return number


def _non_negative_int(value: str) -> int:
    number = int(value)
    if number < 0:
        raise ValueError("expected a whole number of at least 0")
    return number


def _port(value: str) -> int:
    number = int(value)
    if not 1 <= number <= 65535:
        raise ValueError("expected a port number from 1 to 65535")
    return number


def _positive_float(value: str) -> float:
    number = float(value)
    if not (number > 0 and math.isfinite(number)):
        raise ValueError("expected a finite number above 0")
    return number


def _non_negative_float(value: str) -> float:
    number = float(value)
    if not math.isfinite(number) or number < 0:
        raise ValueError("expected a number of seconds, 0 or more")
    return number


def _token(value: str) -> str:
    if len(value) < 16 or any(c.isspace() for c in value):
        raise ValueError("expected at least 16 characters and no spaces")
    return value


def _rate(value: str) -> str:
    for part in value.split(";"):
        if not _RATE.match(part):
            raise ValueError('expected a limit such as "50/second" or "1000 per minute"')
    return value


def _networks(value: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(part.strip()) for part in value.split(",") if part.strip())


def _seconds_list(value: str) -> tuple[int, ...]:
    seconds = tuple(int(part) for part in value.split(","))
    if not seconds or any(s < 0 for s in seconds):
        raise ValueError("expected comma-separated whole seconds")
    return seconds


def _words(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())


def _encryption_keys(value: str) -> tuple[str, ...]:
    keys = _words(value)
    if not keys or not all(valid_key(key) for key in keys):
        raise ValueError(
            "expected comma-separated Fernet keys (url-safe base64 of 32 bytes); "
            "`hopper encryption generate-key` makes one"
        )
    return keys


_TARGET = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")


def _job_type_targets(value: str) -> str:
    targets = _words(value)
    if not targets or not all(_TARGET.match(target) for target in targets):
        raise ValueError("expected comma-separated package.module:attribute names")
    return ",".join(targets)


def _public_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise ValueError("expected the service's public base URL, such as https://jobs.example.com")
    return value.rstrip("/")


def _url(schemes: tuple[str, ...]) -> Callable[[str], str]:
    def parse(value: str) -> str:
        if value.split("://", 1)[0].split("+", 1)[0] not in schemes or "://" not in value:
            raise ValueError(f"expected a URL starting with one of {', '.join(schemes)}")
        return value

    return parse


@dataclass(frozen=True)
class Settings:
    database_url: str
    broker_url: str
    redis_url: str | None
    embedded: bool
    listen_database_url: str | None = None
    database_replica_url: str | None = None
    replica_max_lag_seconds: float = 5.0
    host: str = "127.0.0.1"
    port: int = 8000
    web_threads: int = 16
    web_processes: int = 2
    encryption_keys: tuple[str, ...] = ()
    outbound_allow_private: bool = False
    outbound_allow_http: bool = False
    outbound_allowed_networks: tuple[Any, ...] = ()
    http_jobs_allow_private: bool = False
    rate_limit_default: str = RATE_LIMIT_DEFAULT
    rate_limit_create: str = RATE_LIMIT_CREATE
    # The same limits again per tenant, across all of its keys (None: as per key).
    rate_limit_tenant_default: str | None = None
    rate_limit_tenant_create: str | None = None
    quota_unfinished_jobs: int = 100_000
    quota_payload_bytes: int = 1024**3
    quota_api_keys: int = 100
    quota_webhook_endpoints: int = 100
    rate_limit_auth_failures: str = RATE_LIMIT_AUTH_FAILURES
    trusted_proxy_hops: int = 0
    public_url: str | None = None
    retry_base_seconds: float = 1.0
    retry_max_seconds: float = 3600.0
    webhook_retry_schedule: tuple[int, ...] = (5, 300, 1800, 7200, 18000, 36000, 36000)
    lease_seconds: float = 30.0
    max_body_bytes: int = 1024 * 1024
    max_batch_body_bytes: int = 10 * 1024 * 1024
    cors_origins: tuple[str, ...] = ()
    publish_timeout_seconds: float = 0.25
    republish_after_seconds: float = 60.0
    dispatch_window: int = 100  # jobs in flight per queue (domain.dispatch.service)
    stop_grace_seconds: float = 3.0
    worker_grace_seconds: float = 30.0
    metrics_port: int | None = None
    metrics_token: str | None = None
    hard_limit_margin_seconds: float = 30.0
    retention_jobs_days: float = 30.0
    retention_events_days: float = 30.0
    retention_idempotency_hours: float = 24.0
    retention_audit_days: float = 365.0
    log_format: str = "auto"
    log_level: str = "INFO"
    job_types: str | None = None  # HOPPER_JOB_TYPES: plugin types besides the entry points'
    var_dir: Path = field(default=Path("var"))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        reader = _Reader(env)
        var_dir = Path(env.get("HOPPER_VAR_DIR", "var"))
        database_url = reader.get("DATABASE_URL", _url(("postgresql", "sqlite")), None)
        broker_url = reader.get(
            "BROKER_URL", _url(("amqp", "pyamqp", "filesystem", "memory")), None
        )
        embedded = database_url is None
        if database_url is None:
            database_url = f"sqlite:///{(var_dir / 'hopper.sqlite3').absolute()}"
        if broker_url is None:
            broker_url = "filesystem://"
        return cls(
            database_url=database_url,
            broker_url=broker_url,
            redis_url=reader.get("REDIS_URL", _url(("redis", "rediss", "unix")), None),
            embedded=embedded,
            listen_database_url=reader.get(
                "HOPPER_LISTEN_DATABASE_URL", _url(("postgresql",)), None
            ),
            database_replica_url=_replica_of(
                database_url,
                reader.get("DATABASE_REPLICA_URL", _url(("postgresql",)), None),
                reader.get("REDIS_URL", _url(("redis", "rediss", "unix")), None),
            ),
            replica_max_lag_seconds=reader.get(
                "HOPPER_REPLICA_MAX_LAG_SECONDS", _positive_float, 5.0
            ),
            host=reader.get("HOST", str, "127.0.0.1"),
            port=reader.get("PORT", _port, 8000),
            web_threads=reader.get("HOPPER_WEB_THREADS", _positive_int, 16),
            web_processes=reader.get("HOPPER_WEB_PROCESSES", _positive_int, 2),
            encryption_keys=_required_unless(
                embedded,
                "HOPPER_ENCRYPTION_KEYS",
                reader.get("HOPPER_ENCRYPTION_KEYS", _encryption_keys, ()),
            ),
            outbound_allow_private=reader.get("HOPPER_OUTBOUND_ALLOW_PRIVATE", _boolean, embedded),
            outbound_allow_http=reader.get("HOPPER_OUTBOUND_ALLOW_HTTP", _boolean, embedded),
            outbound_allowed_networks=reader.get("HOPPER_OUTBOUND_ALLOWED_NETWORKS", _networks, ()),
            # `http` jobs' own: private targets only through a tenant's allow-list by default,
            # whatever webhooks (and the embedded default) allow.
            http_jobs_allow_private=reader.get("HOPPER_HTTP_JOBS_ALLOW_PRIVATE", _boolean, False),
            rate_limit_default=reader.get("HOPPER_RATE_LIMIT_DEFAULT", _rate, RATE_LIMIT_DEFAULT),
            rate_limit_create=reader.get("HOPPER_RATE_LIMIT_CREATE", _rate, RATE_LIMIT_CREATE),
            rate_limit_tenant_default=reader.get("HOPPER_RATE_LIMIT_TENANT_DEFAULT", _rate, None),
            rate_limit_tenant_create=reader.get("HOPPER_RATE_LIMIT_TENANT_CREATE", _rate, None),
            quota_unfinished_jobs=reader.get(
                "HOPPER_QUOTA_UNFINISHED_JOBS", _non_negative_int, 100_000
            ),
            quota_payload_bytes=reader.get(
                "HOPPER_QUOTA_PAYLOAD_BYTES", _non_negative_int, 1024**3
            ),
            quota_api_keys=reader.get("HOPPER_QUOTA_API_KEYS", _non_negative_int, 100),
            quota_webhook_endpoints=reader.get(
                "HOPPER_QUOTA_WEBHOOK_ENDPOINTS", _non_negative_int, 100
            ),
            rate_limit_auth_failures=reader.get(
                "HOPPER_RATE_LIMIT_AUTH_FAILURES", _rate, RATE_LIMIT_AUTH_FAILURES
            ),
            trusted_proxy_hops=reader.get("HOPPER_TRUSTED_PROXY_HOPS", _non_negative_int, 0),
            public_url=reader.get("HOPPER_PUBLIC_URL", _public_url, None),
            retry_base_seconds=reader.get("HOPPER_RETRY_BASE_SECONDS", _positive_float, 1.0),
            retry_max_seconds=reader.get("HOPPER_RETRY_MAX_SECONDS", _positive_float, 3600.0),
            webhook_retry_schedule=reader.get(
                "HOPPER_WEBHOOK_RETRY_SCHEDULE",
                _seconds_list,
                (5, 300, 1800, 7200, 18000, 36000, 36000),
            ),
            lease_seconds=reader.get("HOPPER_LEASE_SECONDS", _positive_float, 30.0),
            max_body_bytes=reader.get("HOPPER_MAX_BODY_BYTES", _positive_int, 1024 * 1024),
            max_batch_body_bytes=reader.get(
                "HOPPER_MAX_BATCH_BODY_BYTES", _positive_int, 10 * 1024 * 1024
            ),
            cors_origins=reader.get("HOPPER_CORS_ORIGINS", _words, ()),
            publish_timeout_seconds=reader.get(
                "HOPPER_PUBLISH_TIMEOUT_SECONDS", _positive_float, 0.25
            ),
            republish_after_seconds=reader.get(
                "HOPPER_REPUBLISH_AFTER_SECONDS", _positive_float, 60.0
            ),
            dispatch_window=reader.get("HOPPER_DISPATCH_WINDOW", _positive_int, 100),
            stop_grace_seconds=reader.get("HOPPER_STOP_GRACE_SECONDS", _positive_float, 3.0),
            worker_grace_seconds=reader.get(
                "HOPPER_WORKER_GRACE_SECONDS", _non_negative_float, 30.0
            ),
            metrics_port=_metrics_port(
                reader.get("PORT", _port, 8000), reader.get("HOPPER_METRICS_PORT", _port, None)
            ),
            metrics_token=reader.get("HOPPER_METRICS_TOKEN", _token, None),
            hard_limit_margin_seconds=reader.get(
                "HOPPER_HARD_LIMIT_MARGIN_SECONDS", _positive_float, 30.0
            ),
            retention_jobs_days=reader.get("HOPPER_RETENTION_JOBS_DAYS", _positive_float, 30.0),
            retention_events_days=reader.get("HOPPER_RETENTION_EVENTS_DAYS", _positive_float, 30.0),
            retention_idempotency_hours=reader.get(
                "HOPPER_RETENTION_IDEMPOTENCY_HOURS", _positive_float, 24.0
            ),
            retention_audit_days=reader.get("HOPPER_RETENTION_AUDIT_DAYS", _positive_float, 365.0),
            job_types=reader.get("HOPPER_JOB_TYPES", _job_type_targets, None),
            log_format=reader.get("HOPPER_LOG_FORMAT", _choice("auto", "json", "console"), "auto"),
            log_level=reader.get(
                "HOPPER_LOG_LEVEL", _choice("DEBUG", "INFO", "WARNING", "ERROR"), "INFO"
            ),
            var_dir=var_dir,
        )

    @property
    def is_postgres(self) -> bool:
        return self.database_url.startswith("postgresql")


def _choice(*allowed: str) -> Callable[[str], str]:
    def parse(value: str) -> str:
        for option in allowed:
            if value.strip().lower() == option.lower():
                return option
        raise ValueError(f"expected one of {', '.join(allowed)}")

    return parse


def _replica_of(database_url: str, replica_url: str | None, redis_url: str | None) -> str | None:
    """Every web process must know the positions each key has seen: in Redis."""
    if replica_url is None:
        return None
    if not database_url.startswith("postgresql"):
        raise ConfigError("DATABASE_REPLICA_URL", "a replica needs DATABASE_URL on PostgreSQL")
    if redis_url is None:
        raise ConfigError("DATABASE_REPLICA_URL", "a replica needs REDIS_URL (read-your-writes)")
    return replica_url


def _metrics_port(port: int, metrics_port: int | None) -> int | None:
    if metrics_port == port:
        raise ConfigError("HOPPER_METRICS_PORT", f"must differ from PORT ({port})")
    return metrics_port


def _required_unless(embedded: bool, name: str, value: Any) -> Any:
    if not value and not embedded:
        raise ConfigError(
            name, "required when DATABASE_URL is set (the embedded default makes its own)"
        )
    return value


# An error about one of these names it without the secret its value holds.
_URLS = frozenset(
    {
        "DATABASE_URL",
        "DATABASE_REPLICA_URL",
        "HOPPER_LISTEN_DATABASE_URL",
        "BROKER_URL",
        "REDIS_URL",
    }
)
_SECRETS = frozenset({"HOPPER_ENCRYPTION_KEYS", "HOPPER_METRICS_TOKEN"})


def _shown(name: str, raw: str) -> str:
    if name in _SECRETS:
        return "(not shown: it is a secret)"
    if name in _URLS:
        return repr(re.sub(r"(://[^:/@]*:)[^@/]*@", r"\1***@", raw))  # the password masked
    return repr(raw)


class _Reader:
    def __init__(self, env: Mapping[str, str]) -> None:
        self._env = env

    def get(self, name: str, parse: Callable[[str], Any], default: Any) -> Any:
        raw = self._env.get(name)
        if raw is None or raw.strip() == "":
            return default
        try:
            return parse(raw.strip())
        except ValueError as exc:
            raise ConfigError(name, f"invalid value {_shown(name, raw)} ({exc})") from None
