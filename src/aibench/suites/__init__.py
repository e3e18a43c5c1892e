"""The suites: each registers itself in aibench/registry.py where it is defined (built-in suites
with `@register_suite`, other packages' through entry points); these are the registry's
readers."""

from ..registry import all_suites, get_suite

__all__ = ["all_suites", "get_suite"]
