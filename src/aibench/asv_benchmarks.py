"""Builds the asv benchmark classes of suites/<suite>.py from each suite's AsvSpec, so
that `asv run` drives the same cases `aibench run` does and lands on the same names,
params and versions that `aibench run` records (asv_export.py)."""

from __future__ import annotations

import os
from typing import Any

from .harness import SamplingPolicy
from .results import PASSED
from .suites import get_suite
from .suites.base import RunContext
from .targets import parse_target


def asv_class(suite_name: str, class_name: str | None = None) -> type:
    """The asv benchmark class `class_name` of a suite (its only one when None)."""
    suite = get_suite(suite_name)
    specs = suite.asv_specs()
    spec = next(s for s in specs if class_name in (None, s.class_name))
    # The points each asv parameter tuple stands for: (params, target, impl name).
    points: dict[tuple, tuple[dict[str, Any], str, str]] = {}
    kinds = spec.param_values[spec.param_names.index("target")] if "target" in spec.param_names else (spec.target_kind,)
    for kind in kinds:
        target = parse_target(kind)
        for tier in ("quick", "standard", "full"):
            for params in suite.default_cases(tier, target):
                for impl in suite.impls():
                    key = spec.key(params, str(target), impl.name) if kind in impl.target_kinds else None
                    if key is not None:
                        points[key] = (params, str(target), impl.name)
    budget = float(os.environ.get("AIBENCH_ASV_BUDGET", "1.0"))

    def setup(self, *key):
        if key not in points:
            raise NotImplementedError("not a case of this suite")
        params, target, impl_name = points[key]
        impl = next(i for i in suite.impls() if i.name == impl_name)
        if impl.unavailable_reason(parse_target(target)) is not None:
            raise NotImplementedError(impl.unavailable_reason(parse_target(target)))
        ctx = RunContext(target=parse_target(target), policy=SamplingPolicy(budget_s=budget))
        result, = suite.run_case(params, impl, ctx)
        if result.status != PASSED:
            raise NotImplementedError(result.error or (result.validation and result.validation.reason))
        self.result = result

    methods: dict[str, Any] = {
        "params": [list(v) for v in spec.param_values],
        "param_names": list(spec.param_names),
        "version": spec.version,
        "timeout": 600,
        "setup": setup,
    }
    for track in spec.tracks:
        def make(track=track):
            def method(self, *key):
                return self.result.metrics[track.metric].value * track.scale
            method.unit = track.unit
            method.__name__ = track.method
            return method
        methods[track.method] = make()
    return type(spec.class_name, (), methods)

