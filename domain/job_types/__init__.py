"""The job-type registry: the built-in types, and the team's own through the plugin loader.

A team adds a type without touching this tree: its own package declares a ``JobType`` in the
``hopper.job_types`` entry-point group, or names it in ``HOPPER_JOB_TYPES`` (``plugins``).
"""

from __future__ import annotations

from collections.abc import Iterable

from domain.job_types import echo, fail, hashing, http, sleep, stubborn
from domain.job_types.plugins import Plugin, check_unique, plugin_job_types
from domain.job_types.registry import JobType, Registry

BUILT_IN = (
    echo.JOB_TYPE,
    sleep.JOB_TYPE,
    fail.JOB_TYPE,
    hashing.JOB_TYPE,
    stubborn.JOB_TYPE,
    http.JOB_TYPE,
)


def build_registry(plugins: Iterable[Plugin] = ()) -> Registry:
    """A fresh registry of the built-in types and ``plugins``; a name clash is a ConfigError."""
    plugins = tuple(plugins)
    check_unique(plugins, (job_type.name for job_type in BUILT_IN))
    registry = Registry()
    for job_type in (*BUILT_IN, *(plugin.job_type for plugin in plugins)):
        registry.register(job_type)
    return registry


def registry_for(job_types_spec: str | None) -> Registry:
    """The process's registry: built-in types, entry points, and ``HOPPER_JOB_TYPES``."""
    return build_registry(plugin_job_types(job_types_spec))


__all__ = ["JobType", "Registry", "build_registry", "registry_for"]
