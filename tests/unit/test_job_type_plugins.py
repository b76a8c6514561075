"""The plugin loader: a team's types from an entry point or HOPPER_JOB_TYPES join the built-in
ones, and each way a plugin can be wrong is one clear ConfigError at start."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from domain.job_types import build_registry, registry_for
from domain.job_types.plugins import ENTRY_POINT_GROUP, plugin_job_types
from domain.settings import ConfigError, Settings
from tests.plugin_samples import SHOUT, WHISPER


@pytest.fixture(autouse=True)
def fresh_loader() -> Iterator[None]:
    plugin_job_types.cache_clear()
    yield
    plugin_job_types.cache_clear()


def entry_point(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    """An installed distribution that declares ``name = value`` in the plugin group."""
    info = tmp_path / f"sample_{name}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: sample-{name}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\n{name} = {value}\n")
    monkeypatch.syspath_prepend(str(tmp_path))


def test_a_spec_adds_its_types_beside_the_built_in_ones() -> None:
    registry = registry_for("tests.plugin_samples:GOOD")
    assert registry.get("sample_shout") is SHOUT
    assert {"echo", "sleep", "sample_shout"} <= {t.name for t in registry}
    assert "samples" in registry.queues


def test_a_spec_may_name_one_type_or_several_targets() -> None:
    registry = registry_for("tests.plugin_samples:SHOUT,tests.plugin_samples:WHISPER")
    assert registry.get("sample_whisper") is WHISPER
    assert registry.get("sample_shout") is SHOUT


def test_an_entry_point_adds_its_types(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert "sample_shout" not in registry_for(None)
    plugin_job_types.cache_clear()
    entry_point(tmp_path, monkeypatch, "shout", "tests.plugin_samples:GOOD")
    assert registry_for(None).get("sample_shout") is SHOUT


def test_an_entry_point_that_cannot_load_names_itself(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    entry_point(tmp_path, monkeypatch, "broken", "tests.plugin_samples.broken:TYPES")
    with pytest.raises(ConfigError) as raised:
        registry_for(None)
    message = str(raised.value)
    assert message.startswith("entry point broken = tests.plugin_samples.broken:TYPES")
    assert "ModuleNotFoundError" in message
    assert "hopper_sample_dependency_that_is_not_installed" in message


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("tests.plugin_samples.broken:TYPES", "cannot be loaded: ModuleNotFoundError"),
        ("tests.plugin_samples:MISSING", "cannot be loaded: AttributeError"),
        ("tests.plugin_samples:NOT_A_TYPE", "is a str, not a JobType"),
        ("tests.plugin_samples:EMPTY", "names an empty list"),
        ("tests.plugin_samples:CLASH", "'echo' is declared already, by Hopper's built-in types"),
        ("tests.plugin_samples:TWICE", "'sample_shout' is declared already, by HOPPER_JOB_TYPES"),
        ("tests.plugin_samples:NOT_A_SCHEMA", "payload_schema must be a marshmallow Schema"),
        ("tests.plugin_samples:SCHEMA_THAT_DOES_NOT_BUILD", "BrokenSchema does not build"),
        ("tests.plugin_samples:BAD_NAME", "the name must be"),
        ("tests.plugin_samples:DELIVERIES_QUEUE", "'webhooks' is the webhook deliveries'"),
        ("tests.plugin_samples:NOT_CALLABLE", "the handler is not callable"),
        ("tests.plugin_samples:TIMEOUT_TOO_LONG", "default_timeout_seconds must be"),
        ("tests.plugin_samples:NO_DESCRIPTION", "the description must be"),
        ("tests.plugin_samples:ATTEMPTS_AS_A_BOOL", "default_max_attempts must be a whole"),
        ("tests.plugin_samples:TIMEOUT_AS_A_FLOAT", "default_timeout_seconds must be a whole"),
        ("tests.plugin_samples:SECRET_FIELDS_AS_A_STRING", "secret_fields must be a tuple"),
        ("tests.plugin_samples:SECRET_FIELD_NOT_IN_THE_SCHEMA", "secret field 'token' is not"),
        ("tests.plugin_samples:PAYLOAD_THAT_DOES_NOT_BUILD", "BrokenSchema does not build"),
    ],
)
def test_each_way_to_be_wrong_is_one_line_naming_the_plugin(target: str, expected: str) -> None:
    with pytest.raises(ConfigError) as raised:
        registry_for(target)
    message = str(raised.value)
    assert message.startswith(f"HOPPER_JOB_TYPES {target}"), message
    assert expected in message, message
    assert "\n" not in message


def test_a_secret_field_of_the_payload_schema_is_accepted() -> None:
    registry = registry_for("tests.plugin_samples:SECRET_TEXT")
    assert registry.get("sample_secret_shout").secret_fields == ("text",)


def test_a_clash_between_two_plugins_names_the_first() -> None:
    with pytest.raises(ConfigError, match=r"by HOPPER_JOB_TYPES tests\.plugin_samples:SHOUT"):
        registry_for("tests.plugin_samples:SHOUT,tests.plugin_samples:GOOD")


def test_the_built_in_registry_is_unchanged_without_plugins() -> None:
    assert [t.name for t in registry_for(None)] == [t.name for t in build_registry()]


@pytest.mark.parametrize("value", ["tests.plugin_samples", "a:b:c", ":GOOD", "a b:c"])
def test_a_malformed_spec_is_a_settings_error(value: str) -> None:
    with pytest.raises(ConfigError, match="HOPPER_JOB_TYPES"):
        Settings.from_env({"HOPPER_JOB_TYPES": value})


def test_a_spec_is_read_into_the_settings() -> None:
    settings = Settings.from_env({"HOPPER_JOB_TYPES": " tests.plugin_samples:GOOD , a.b:C "})
    assert settings.job_types == "tests.plugin_samples:GOOD,a.b:C"
