"""Suites and impls from other installed packages, through Python entry points.

A package adds a suite with an entry point in the group `aibench.suites` naming a Suite
subclass, and an impl of an existing suite with one in `aibench.impls` named
`<suite>.<impl>` (e.g. `gemm.myblas`) naming an Impl subclass. docs/extending.md has the
guide; examples/aibench-example-plugin is a tested one.
"""

from __future__ import annotations

import functools
import sys
from importlib.metadata import entry_points

from ..errors import UsageError

SUITES_GROUP, IMPLS_GROUP = "aibench.suites", "aibench.impls"
# The suite/impl contract (suites/base.py: Suite, Impl, the case template). It changes
# when a plugin written for the old one would misbehave; such a plugin is refused, as fio
# refuses an engine of another FIO_IOOPS_VERSION.
CONTRACT_VERSION = 1


def _check_contract(cls, kind: str, name: str) -> None:
    """TypeError unless `cls` is an aibench `kind` ("suite" or "impl") class named `name`
    written for this contract. Suite and Impl carry `aibench_contract` (base.py), so any
    subclass does; this module stays below base.py by reading the attribute, not importing it."""
    contract = getattr(cls, "aibench_contract", None) if isinstance(cls, type) else None
    if not (isinstance(contract, tuple) and len(contract) == 2 and contract[0] == kind):
        raise TypeError(f"is not an aibench {kind.capitalize()} subclass")
    if contract[1] != CONTRACT_VERSION:
        raise TypeError(f"was written for the suite contract version {contract[1]!r}; this aibench has "
                        f"version {CONTRACT_VERSION} (upgrade the plugin or aibench)")
    if getattr(cls, "name", None) != name:
        raise TypeError(f"is named {getattr(cls, 'name', None)!r}, not {name!r}")


def _package(ep) -> str | None:
    dist = getattr(ep, "dist", None)
    return f"{dist.metadata['Name']} {dist.version}" if dist is not None else None


def _load(ep, kind: str):
    """The object an entry point names. A plugin whose import raises an Exception is left
    out (with a warning, by the caller); one that raises SystemExit or another
    BaseException (not Ctrl-C) would end aibench as if it had succeeded, measuring nothing:
    that fails closed, one line naming the plugin (exit 2)."""
    try:
        return ep.load()
    except (Exception, KeyboardInterrupt):
        raise
    except BaseException as e:  # noqa: BLE001 - SystemExit, GeneratorExit, ...: never silently
        raise UsageError(f"{kind} plugin {ep.name!r} ({ep.value}) ended aibench while loading "
                         f"({type(e).__name__}: {e}): uninstall or fix that package") from None


@functools.lru_cache(maxsize=1)
def _loaded() -> tuple[dict, dict, tuple[str, ...]]:
    """(suite name -> Suite class, suite name -> [Impl class], problems). A plugin that
    fails to load is left out with a one-line warning: it never breaks a run (one that
stops the process at import is refused: `_load`)."""
    suites, impls, problems = {}, {}, []
    for ep in entry_points(group=SUITES_GROUP):
        try:
            cls = _load(ep, "suite")
            _check_contract(cls, "suite", ep.name)
            cls.package = _package(ep)
            suites[ep.name] = cls
        except UsageError:  # it stopped the process at import (_load)
            raise
        except Exception as e:  # noqa: BLE001 - a broken plugin is reported, not fatal
            problems.append(f"suite plugin {ep.name!r} ({ep.value}) not loaded: {type(e).__name__}: {e}")
    for ep in entry_points(group=IMPLS_GROUP):
        suite, _, name = ep.name.partition(".")
        try:
            cls = _load(ep, "impl")
            if not suite or not name:
                raise TypeError("entry point names of impls are <suite>.<impl>")
            _check_contract(cls, "impl", name)
            cls.package = _package(ep)
            impls.setdefault(suite, []).append(cls)
        except UsageError:
            raise
        except Exception as e:  # noqa: BLE001
            problems.append(f"impl plugin {ep.name!r} ({ep.value}) not loaded: {type(e).__name__}: {e}")
    for line in problems:
        print(f"aibench: warning: {line}", file=sys.stderr)
    return suites, impls, tuple(problems)


def plugin_suites() -> dict:
    return dict(_loaded()[0])


def plugin_impls(suite: str) -> list:
    return list(_loaded()[1].get(suite, []))


def plugin_packages() -> list[str]:
    """"package version" of every package whose suites or impls are loaded."""
    suites, impls, _ = _loaded()
    found = [c.package for c in suites.values()] + [c.package for group in impls.values() for c in group]
    return sorted({p for p in found if p})
