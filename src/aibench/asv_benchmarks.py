"""Builds asv's benchmark classes from the suites' AsvSpecs, for every suite in the
registry (suites/benchmarks.py, asv's benchmark_dir, is this module's output), so that
`asv run` drives the same cases `aibench run` does and lands on the same names, params
and versions that `aibench run` records (asv_export.py)."""

from __future__ import annotations

import os
import re
from typing import Any

from .harness import SamplingPolicy
from .results import PASSED
from .suites import all_suites
from .suites.base import AsvSpec, RunContext, Suite
from .targets import parse_target


def asv_module(suite: str) -> str:
    """The asv module name of a suite: `pytest:bench_loader` -> `pytest_bench_loader`."""
    return re.sub(r"\W", "_", suite)


def benchmark_name(suite: str, class_name: str, method: str) -> str:
    """An asv benchmark's name, `<module>.<Class>.<track>`: what results/ records, the
    same since each suite had its own module under suites/."""
    return f"{asv_module(suite)}.{class_name}.{method}"


def asv_classes() -> dict[str, type]:
    """Every asv benchmark class of every registered suite, by a module attribute name
    unique across suites (`<module>_<Class>`)."""
    return {f"{asv_module(name)}_{spec.class_name}": asv_class(suite, spec)
            for name, suite in all_suites().items() for spec in suite.asv_specs()}


def asv_class(suite: Suite, spec: AsvSpec) -> type:
    """The asv benchmark class of one AsvSpec of `suite`."""
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
            # asv names a benchmark by its module unless told: one generated module keeps
            # the names each suite's own module gave.
            method.benchmark_name = benchmark_name(suite.name, spec.class_name, track.method)
            return method
        methods[track.method] = make()
    return type(spec.class_name, (), methods)
