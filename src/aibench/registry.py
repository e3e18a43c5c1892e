"""The one registry of suites and impls, and the version of the suite contract.

Every suite is registered the same way, where it is defined, and through one contract
check (`check_contract`):

- a built-in suite: `@register_suite` on its class. Every module of `aibench.suites` is
  imported on first use of the registry (as asv discovers its benchmark modules, and as
  entry points are loaded), so a new suite package needs no line anywhere else;
- a suite or impl from another installed package: an entry point in `aibench.suites`
  (naming a Suite subclass) or `aibench.impls` (`<suite>.<impl>`, naming an Impl
  subclass); the loader passes those classes to the same `register_suite` /
  `register_impl`;
- a family of suites named by a prefix (`pytest:PATH`): `@register_suite_family(prefix)`,
  whose class is constructed with the rest of the name.

This module sits below everything it registers and imports nothing of it (no import
circle, no upward import): Suite and Impl carry `aibench_contract`, read here as an
attribute, and the suite modules are found by name, like entry points. So the lowest
layers can read a suite's declarations (results.py: `context_keys`) without importing
the suites.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
from importlib.metadata import entry_points
from typing import Any, Callable

from .errors import UsageError

SUITES_GROUP, IMPLS_GROUP = "aibench.suites", "aibench.impls"
# The package whose modules hold the built-in suites: loaded by name, as an entry point is.
BUILTIN_SUITES = "aibench.suites"
# The suite/impl contract (suites/base.py: Suite, Impl, the case template). It changes
# when a plugin written for the old one would misbehave; such a plugin is refused, as fio
# refuses an engine of another FIO_IOOPS_VERSION. 2: every impl is constructed as
# impl(params, ctx), the run's shared resources on ctx (RunContext.resource).
CONTRACT_VERSION = 2

_suites: dict[str, type] = {}  # name -> Suite class, in registration order (built-ins first)
_families: dict[str, type] = {}  # name prefix -> Suite class constructed with the rest of the name
_impls: dict[str, list[type]] = {}  # suite name -> Impl classes from other packages
_loaded = False


def check_contract(cls: Any, kind: str, name: str | None = None) -> None:
    """TypeError unless `cls` is an aibench `kind` ("suite" or "impl") class written for
    this contract (and, when given, named `name`)."""
    contract = getattr(cls, "aibench_contract", None) if isinstance(cls, type) else None
    if not (isinstance(contract, tuple) and len(contract) == 2 and contract[0] == kind):
        raise TypeError(f"is not an aibench {kind.capitalize()} subclass")
    if contract[1] != CONTRACT_VERSION:
        raise TypeError(f"was written for the suite contract version {contract[1]!r}; this aibench has "
                        f"version {CONTRACT_VERSION} (upgrade the plugin or aibench)")
    if name is not None and getattr(cls, "name", None) != name:
        raise TypeError(f"is named {getattr(cls, 'name', None)!r}, not {name!r}")


def register_suite(cls: type | None = None, *, name: str | None = None, package: str | None = None):
    """Register a Suite class under `name` (default its `name`), checking it and the impls
    of its IMPLS table against the contract; usable as a bare class decorator. `package`
    ("package version") marks a suite from another package. The first registration of a
    name stands: a plugin never replaces a built-in suite (those are registered first)."""
    def register(cls: type) -> type:
        check_contract(cls, "suite", cls.name if name is None else name)
        for impl in getattr(cls, "IMPLS", ()):
            check_contract(impl, "impl", impl.name)
        if package is not None:
            cls.package = package
        _suites.setdefault(cls.name if name is None else name, cls)
        return cls
    return register if cls is None else register(cls)


def register_suite_family(prefix: str) -> Callable[[type], type]:
    """Class decorator: suites named `<prefix><rest>` are `cls(rest)` (`pytest:PATH`)."""
    def register(cls: type) -> type:
        check_contract(cls, "suite")
        _families[prefix] = cls
        return cls
    return register


def register_impl(suite: str, cls: type, package: str | None = None) -> None:
    """Add an impl class (from another package) to the suite named `suite`."""
    check_contract(cls, "impl")
    if package is not None:
        cls.package = package
    _impls.setdefault(suite, []).append(cls)


# --- reading the registry ---------------------------------------------------------------
def all_suites() -> dict[str, Any]:
    """A fresh instance of every registered suite, by name: the built-in ones, then those
    of other installed packages. A suite that is not written yet is not listed."""
    _load()
    return {name: cls() for name, cls in _suites.items()}


def get_suite(name: str) -> Any:
    """A fresh instance of the suite `name`; a family's (`pytest:PATH`) for a name with
    its prefix; UsageError for an unknown name."""
    _load()
    for prefix, cls in _families.items():
        if name.startswith(prefix):
            return cls(name[len(prefix):])
    if name not in _suites:
        raise UsageError(f"unknown suite {name!r} (available: {', '.join(_suites)})")
    return _suites[name]()


def registered_impls(suite: str) -> list[type]:
    """The impl classes other packages add to `suite` (its own are its IMPLS table)."""
    _load()
    return list(_impls.get(suite, []))


def context_keys(suite: str) -> tuple:
    """What the suite named `suite` declares makes its cases comparable besides their
    params (Suite.context_keys: results.ContextKey), read by CaseResult.key(); () for a
    suite not registered here (a plugin not installed)."""
    _load()
    cls = _suites.get(suite) or next((c for prefix, c in _families.items() if suite.startswith(prefix)), None)
    return tuple(getattr(cls, "context_keys", ()))


def plugin_packages() -> list[str]:
    """"package version" of every package whose suites or impls are registered."""
    _load()
    found = [c.package for c in _suites.values()] + [c.package for group in _impls.values() for c in group]
    return sorted({p for p in found if p})


# --- loading ----------------------------------------------------------------------------
def _load() -> None:
    """Import every module of aibench.suites once (their decorators register the built-in
    suites), then register the suites and impls of other packages' entry points. What
    fails to load is left out with a one-line warning, built-in or not: a suite being
    written, or a broken package, never breaks the others."""
    global _loaded
    if _loaded:
        return
    _loaded = True  # first: a suite module that reads the registry while importing sees it as it is
    problems: list[str] = []
    suites = importlib.import_module(BUILTIN_SUITES)
    for module in pkgutil.iter_modules(suites.__path__):
        name = f"{suites.__name__}.{module.name}"
        _attempt(f"suite module {name}", lambda: importlib.import_module(name), problems)
    if problems:  # aibench's own suites: a run without one would pass, measuring less
        _loaded = False
        raise UsageError(f"aibench's own {problems[0]}: this installation is broken (reinstall aibench)")
    # By name: the order modules happen to import each other in is no order to list or run in.
    for name in sorted(_suites):
        _suites[name] = _suites.pop(name)
    for ep in entry_points(group=SUITES_GROUP):
        _attempt(f"suite plugin {ep.name!r} ({ep.value})",
                 lambda: register_suite(ep.load(), name=ep.name, package=_package(ep)), problems)
    for ep in entry_points(group=IMPLS_GROUP):
        _attempt(f"impl plugin {ep.name!r} ({ep.value})", lambda: _register_entry_point_impl(ep), problems)
    for line in problems:
        print(f"aibench: warning: {line}", file=sys.stderr)


def _register_entry_point_impl(ep) -> None:
    suite, _, name = ep.name.partition(".")
    cls = ep.load()
    if not suite or not name:
        raise TypeError("entry point names of impls are <suite>.<impl>")
    check_contract(cls, "impl", name)
    register_impl(suite, cls, _package(ep))


def _package(ep) -> str | None:
    dist = getattr(ep, "dist", None)
    return f"{dist.metadata['Name']} {dist.version}" if dist is not None else None


def _attempt(what: str, load: Callable[[], Any], problems: list[str]) -> None:
    """Import and register `what` by calling `load`. An Exception leaves it out, its
    reason one line in `problems`; a SystemExit or another BaseException (not Ctrl-C)
    would end aibench as if it had succeeded, measuring nothing: that fails closed, one
    line naming `what` (UsageError: exit 2)."""
    try:
        load()
    except KeyboardInterrupt:
        raise
    except Exception as e:  # noqa: BLE001 - reported, not fatal
        problems.append(f"{what} not loaded: {type(e).__name__}: {e}")
    except BaseException as e:  # noqa: BLE001 - SystemExit, GeneratorExit, ...: never silently
        raise UsageError(f"{what} ended aibench while loading ({type(e).__name__}: {e}): "
                         "fix or uninstall it") from None
