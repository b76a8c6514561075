"""Wiring and the command line: what builds the other packages into running processes."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("hopper")
except PackageNotFoundError:  # running from a tree that is not installed
    __version__ = "0.0.0"
