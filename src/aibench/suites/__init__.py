"""The registry of suites. A suite that is not written yet is not listed."""

from __future__ import annotations

from ..errors import UsageError
from .base import Suite


def all_suites() -> dict[str, Suite]:
    from .attention import AttentionSuite
    from .gemm import GemmSuite
    from .interconnect import InterconnectSuite
    from .objectstore import ObjectStoreSuite
    from .power import PowerSuite
    from .storage import StorageSuite

    suites = [GemmSuite(), AttentionSuite(), PowerSuite(), InterconnectSuite()]
    suites.append(StorageSuite())
    suites.append(ObjectStoreSuite())
    return {s.name: s for s in suites}


def get_suite(name: str) -> Suite:
    suites = all_suites()
    if name not in suites:
        raise UsageError(f"unknown suite {name!r} (available: {', '.join(suites)})")
    return suites[name]
