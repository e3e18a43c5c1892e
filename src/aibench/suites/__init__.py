"""The registry of suites: the built-in ones, then those other installed packages add
through the `aibench.suites` entry point (plugins.py). A suite that is not written yet is
not listed."""

from __future__ import annotations

from ..errors import UsageError
from .base import Suite


def all_suites() -> dict[str, Suite]:
    from .attention import AttentionSuite
    from .gemm import GemmSuite
    from .interconnect import InterconnectSuite
    from .objectstore import ObjectStoreSuite
    from .plugins import plugin_suites
    from .power import PowerSuite
    from .storage import StorageSuite

    suites = {s.name: s for s in (GemmSuite(), AttentionSuite(), PowerSuite(), InterconnectSuite(), StorageSuite(),
                                  ObjectStoreSuite())}
    for name, cls in plugin_suites().items():
        suites.setdefault(name, cls())  # a plugin never replaces a built-in suite
    return suites


def get_suite(name: str) -> Suite:
    """A suite by name; `pytest:PATH` is the pytest-benchmark file at PATH."""
    from .pytest_suite import pytest_suite

    suite = pytest_suite(name)
    if suite is not None:
        return suite
    suites = all_suites()
    if name not in suites:
        raise UsageError(f"unknown suite {name!r} (available: {', '.join(suites)})")
    return suites[name]
