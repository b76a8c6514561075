"""The job-type registry and the built-in types.

Adding a type: write a module beside these with a payload schema, a result schema and a handler,
build a ``JobType`` in it, and register it in ``build_registry`` below (one line).
"""

from domain.job_types import echo, fail, hashing, sleep, stubborn
from domain.job_types.registry import JobType, Registry


def build_registry() -> Registry:
    registry = Registry()
    registry.register(echo.JOB_TYPE)
    registry.register(sleep.JOB_TYPE)
    registry.register(fail.JOB_TYPE)
    registry.register(hashing.JOB_TYPE)
    registry.register(stubborn.JOB_TYPE)
    return registry


__all__ = ["JobType", "Registry", "build_registry"]
