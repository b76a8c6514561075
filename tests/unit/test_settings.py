"""``Settings.from_env``: defaults, the embedded default, a ConfigError naming each bad value."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from domain.settings import ConfigError, Settings

POSTGRES = "postgresql+psycopg://hopper@db.internal:5432/hopper"


def test_defaults_with_nothing_set_are_the_embedded_default() -> None:
    settings = Settings.from_env({})

    assert settings.embedded is True
    assert settings.database_url.startswith("sqlite:///")
    assert settings.database_url.endswith("/var/hopper.sqlite3")
    assert Path(settings.database_url.removeprefix("sqlite:///")).is_absolute()
    assert not settings.is_postgres
    assert settings.broker_url == "filesystem://"
    assert settings.redis_url is None
    assert settings.host == "127.0.0.1"
    assert settings.port == 8000
    assert settings.outbound_allow_private is True
    assert settings.outbound_allow_http is True
    assert settings.outbound_allowed_networks == ()
    assert settings.retry_base_seconds == 1.0
    assert settings.retry_max_seconds == 3600.0
    assert settings.webhook_retry_schedule == (5, 300, 1800, 7200, 18000, 36000, 36000)
    assert settings.lease_seconds == 30.0
    assert settings.hard_limit_margin_seconds == 30.0
    assert settings.max_body_bytes == 1024 * 1024
    assert settings.max_batch_body_bytes == 10 * 1024 * 1024
    assert settings.cors_origins == ()
    assert settings.log_level == "INFO"
    assert settings.log_format == "auto"


def test_from_env_reads_the_mapping_it_is_given_not_the_process_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PORT", "not a port")
    monkeypatch.setenv("DATABASE_URL", POSTGRES)
    settings = Settings.from_env({})
    assert settings.port == 8000
    assert settings.embedded is True


def test_var_dir_moves_the_embedded_database() -> None:
    settings = Settings.from_env({"HOPPER_VAR_DIR": "/srv/hopper-state"})
    assert settings.var_dir == Path("/srv/hopper-state")
    assert settings.database_url == "sqlite:////srv/hopper-state/hopper.sqlite3"


KEY_1 = "eVElifrZZxG6FzhyHge64BouF0CklwOENwwD9c8ONiw="
KEY_2 = "x2uNc0Hf3T0lYqQ8bXq1c2m7ZkYv4HcX5dJmN0pQe1Y="


def test_encryption_keys_are_required_outside_the_embedded_default() -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({"DATABASE_URL": POSTGRES})
    assert caught.value.variable == "HOPPER_ENCRYPTION_KEYS"
    with pytest.raises(ConfigError):
        Settings.from_env({"DATABASE_URL": POSTGRES, "HOPPER_ENCRYPTION_KEYS": "not-a-key"})


def test_with_a_database_url_it_is_not_the_embedded_default() -> None:
    settings = Settings.from_env(
        {
            "DATABASE_URL": POSTGRES,
            "BROKER_URL": "amqp://guest:guest@mq:5672/hopper",
            "REDIS_URL": "redis://cache:6379/0",
            "HOPPER_ENCRYPTION_KEYS": f"{KEY_2}, {KEY_1}",
        }
    )
    assert settings.embedded is False
    assert settings.is_postgres
    assert settings.database_url == POSTGRES
    assert settings.broker_url == "amqp://guest:guest@mq:5672/hopper"
    assert settings.redis_url == "redis://cache:6379/0"
    assert settings.encryption_keys == (KEY_2, KEY_1)
    # Outside the embedded default, outbound requests stay strict unless allowed explicitly.
    assert settings.outbound_allow_private is False
    assert settings.outbound_allow_http is False


def test_explicit_values_are_parsed_and_typed() -> None:
    settings = Settings.from_env(
        {
            "HOST": "0.0.0.0",
            "PORT": " 9001 ",
            "HOPPER_OUTBOUND_ALLOW_PRIVATE": "no",
            "HOPPER_OUTBOUND_ALLOW_HTTP": "FALSE",
            "HOPPER_OUTBOUND_ALLOWED_NETWORKS": "127.0.0.0/8, ::1/128",
            "HOPPER_RATE_LIMIT_DEFAULT": "50/second",
            "HOPPER_RATE_LIMIT_CREATE": "10 per minute;100/hour",
            "HOPPER_RETRY_BASE_SECONDS": "0.2",
            "HOPPER_RETRY_MAX_SECONDS": "1",
            "HOPPER_WEBHOOK_RETRY_SCHEDULE": "1, 2,3",
            "HOPPER_LEASE_SECONDS": "12.5",
            "HOPPER_CORS_ORIGINS": "https://a.example, https://b.example,",
            "HOPPER_LOG_LEVEL": "debug",
            "HOPPER_LOG_FORMAT": "JSON",
        }
    )
    assert settings.host == "0.0.0.0"
    assert settings.port == 9001
    assert settings.outbound_allow_private is False
    assert settings.outbound_allow_http is False
    assert settings.outbound_allowed_networks == (
        ipaddress.ip_network("127.0.0.0/8"),
        ipaddress.ip_network("::1/128"),
    )
    assert settings.rate_limit_default == "50/second"
    assert settings.rate_limit_create == "10 per minute;100/hour"
    assert settings.retry_base_seconds == 0.2
    assert settings.retry_max_seconds == 1.0
    assert settings.webhook_retry_schedule == (1, 2, 3)
    assert settings.lease_seconds == 12.5
    assert settings.cors_origins == ("https://a.example", "https://b.example")
    assert settings.log_level == "DEBUG"
    assert settings.log_format == "json"


@pytest.mark.parametrize("raw", ["", "   "])
def test_blank_values_mean_the_default(raw: str) -> None:
    settings = Settings.from_env({"PORT": raw, "HOPPER_LEASE_SECONDS": raw, "DATABASE_URL": raw})
    assert settings.port == 8000
    assert settings.lease_seconds == 30.0
    assert settings.embedded is True


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("PORT", "eighty"),
        ("PORT", "0"),
        ("PORT", "65536"),
        ("PORT", "-1"),
        ("PORT", "80.5"),
        ("DATABASE_URL", "mysql://user@host/db"),
        ("DATABASE_URL", "postgres://user@host/db"),
        ("DATABASE_URL", "just-a-path.sqlite3"),
        ("DATABASE_URL", "postgresql"),
        ("BROKER_URL", "redis://localhost:6379/0"),
        ("BROKER_URL", "localhost:5672"),
        ("REDIS_URL", "http://localhost:6379"),
        ("HOPPER_RATE_LIMIT_DEFAULT", "lots"),
        ("HOPPER_RATE_LIMIT_DEFAULT", "50"),
        ("HOPPER_RATE_LIMIT_DEFAULT", "50/fortnight"),
        ("HOPPER_RATE_LIMIT_DEFAULT", "50/second;"),
        ("HOPPER_RATE_LIMIT_CREATE", "/second"),
        ("HOPPER_OUTBOUND_ALLOWED_NETWORKS", "loopback"),
        ("HOPPER_OUTBOUND_ALLOWED_NETWORKS", "127.0.0.0/33"),
        ("HOPPER_OUTBOUND_ALLOWED_NETWORKS", "10.0.0.1/8"),
        ("HOPPER_OUTBOUND_ALLOWED_NETWORKS", "127.0.0.0/8,nope"),
        ("HOPPER_WEBHOOK_RETRY_SCHEDULE", "5,five"),
        ("HOPPER_WEBHOOK_RETRY_SCHEDULE", "5,,300"),
        ("HOPPER_WEBHOOK_RETRY_SCHEDULE", "5,-1"),
        ("HOPPER_WEBHOOK_RETRY_SCHEDULE", "1.5"),
        ("HOPPER_LEASE_SECONDS", "0"),
        ("HOPPER_LEASE_SECONDS", "-5"),
        ("HOPPER_LEASE_SECONDS", "thirty"),
        ("HOPPER_LEASE_SECONDS", "nan"),
        ("HOPPER_RETRY_BASE_SECONDS", "0"),
        ("HOPPER_RETRY_MAX_SECONDS", "-1"),
        ("HOPPER_PUBLISH_TIMEOUT_SECONDS", "0"),
        ("HOPPER_HARD_LIMIT_MARGIN_SECONDS", "0"),
        ("HOPPER_HARD_LIMIT_MARGIN_SECONDS", "half a minute"),
        ("HOPPER_OUTBOUND_ALLOW_PRIVATE", "maybe"),
        ("HOPPER_OUTBOUND_ALLOW_HTTP", "2"),
        ("HOPPER_WEB_THREADS", "0"),
        ("HOPPER_WEB_PROCESSES", "two"),
        ("HOPPER_MAX_BODY_BYTES", "1MiB"),
        ("HOPPER_MAX_BATCH_BODY_BYTES", "0"),
        ("HOPPER_LOG_LEVEL", "LOUD"),
        ("HOPPER_LOG_FORMAT", "xml"),
    ],
)
def test_a_bad_value_raises_config_error_naming_the_variable(variable: str, value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({variable: value})
    assert caught.value.variable == variable
    line = str(caught.value)
    assert line.startswith(f"{variable}: ")
    assert repr(value) in line
    assert "\n" not in line


@pytest.mark.parametrize("value", ["inf", "1e999"])
def test_an_infinite_lease_is_refused_at_start(value: str) -> None:
    # The lease becomes timedelta(seconds=lease_seconds), which raises OverflowError for an
    # infinite value: the process would start and then fail at its first claim, instead of
    # stopping at start with a line naming the variable.
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({"HOPPER_LEASE_SECONDS": value})
    assert caught.value.variable == "HOPPER_LEASE_SECONDS"


def test_config_error_carries_the_variable() -> None:
    error = ConfigError("PORT", "invalid value 'x'")
    assert error.variable == "PORT"
    assert str(error) == "PORT: invalid value 'x'"


@pytest.mark.parametrize("url", ["sqlite:///tmp/x.db", "sqlite://", POSTGRES, "postgresql://h/d"])
def test_accepted_database_urls(url: str) -> None:
    settings = Settings.from_env({"DATABASE_URL": url, "HOPPER_ENCRYPTION_KEYS": KEY_1})
    assert settings.database_url == url
    assert settings.embedded is False
    assert settings.is_postgres is url.startswith("postgresql")


@pytest.mark.parametrize("url", ["amqp://h", "pyamqp://h", "filesystem://", "memory://"])
def test_accepted_broker_urls(url: str) -> None:
    assert Settings.from_env({"BROKER_URL": url}).broker_url == url


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("1", True), ("true", True), ("Yes", True), ("ON", True), ("0", False), ("off", False)],
)
def test_boolean_spellings(raw: str, expected: bool) -> None:
    assert Settings.from_env({"HOPPER_OUTBOUND_ALLOW_HTTP": raw}).outbound_allow_http is expected


def test_the_hard_limit_margin_is_read() -> None:
    assert (
        Settings.from_env({"HOPPER_HARD_LIMIT_MARGIN_SECONDS": "12.5"}).hard_limit_margin_seconds
        == 12.5
    )


KEY = "eVElifrZZxG6FzhyHge64BouF0CklwOENwwD9c8ONiw="
SERVICES = {"DATABASE_URL": POSTGRES, "HOPPER_ENCRYPTION_KEYS": KEY}


def test_the_operators_settings_and_their_defaults() -> None:
    settings = Settings.from_env(
        {
            **SERVICES,
            "REDIS_URL": "redis://127.0.0.1:6379/0",
            "DATABASE_REPLICA_URL": "postgresql+psycopg://hopper@replica:5432/hopper",
            "HOPPER_METRICS_PORT": "9100",
            "HOPPER_METRICS_TOKEN": "a-token-of-sixteen",
            "HOPPER_WORKER_GRACE_SECONDS": "0",
        }
    )
    assert settings.database_replica_url == "postgresql+psycopg://hopper@replica:5432/hopper"
    assert (settings.metrics_port, settings.metrics_token) == (9100, "a-token-of-sixteen")
    assert (settings.worker_grace_seconds, settings.replica_max_lag_seconds) == (0.0, 5.0)
    defaults = Settings.from_env(SERVICES)
    assert (defaults.metrics_port, defaults.metrics_token) == (None, None)
    assert (defaults.worker_grace_seconds, defaults.database_replica_url) == (30.0, None)


@pytest.mark.parametrize(
    ("extra", "variable", "says"),
    [
        ({"DATABASE_REPLICA_URL": "postgresql://r/h"}, "DATABASE_REPLICA_URL", "needs REDIS_URL"),
        ({"HOPPER_METRICS_PORT": "8000"}, "HOPPER_METRICS_PORT", "must differ from PORT"),
        ({"HOPPER_METRICS_TOKEN": "short"}, "HOPPER_METRICS_TOKEN", "at least 16"),
        ({"HOPPER_WORKER_GRACE_SECONDS": "-1"}, "HOPPER_WORKER_GRACE_SECONDS", "0 or more"),
    ],
)
def test_bad_operator_settings_stop_the_process_naming_the_variable(
    extra: dict[str, str], variable: str, says: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        Settings.from_env({**SERVICES, **extra})
    assert raised.value.variable == variable and says in str(raised.value)


def test_an_error_about_a_secret_never_shows_its_value() -> None:
    with pytest.raises(ConfigError) as raised:
        Settings.from_env({**SERVICES, "HOPPER_METRICS_TOKEN": "short pw"})
    assert "short pw" not in str(raised.value) and "not shown" in str(raised.value)
    with pytest.raises(ConfigError) as raised:
        Settings.from_env({**SERVICES, "DATABASE_REPLICA_URL": "postgres://app:s3cret@r/h"})
    assert "s3cret" not in str(raised.value) and "'postgres://app:***@r/h'" in str(raised.value)
