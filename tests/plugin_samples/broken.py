"""A plugin module that cannot be imported."""

import hopper_sample_dependency_that_is_not_installed  # noqa: F401
