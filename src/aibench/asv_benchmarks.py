"""Builds asv's benchmark classes from the suites' AsvSpecs, for every suite in the
registry (suites/benchmarks.py, asv's benchmark_dir, is this module's output), so that
`asv run` drives the same cases `aibench run` does and lands on the same names, params
and versions that `aibench run` records (asv_export.py)."""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from . import mpi
from .asv_export import asv_module, benchmark_name
from .errors import UsageError
from .harness import SamplingPolicy
from .results import PASSED, CaseResult
from .suites import all_suites
from .suites.base import AsvSpec, RunContext, Suite
from .targets import parse_target


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
        result = run_point(suite, params, impl.name, target, budget)
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


def run_point(suite: Suite, params: dict[str, Any], impl: str, target: str, budget_s: float) -> CaseResult:
    """One case, as asv asks for it: in this process; or, for a suite whose cases need MPI
    ranks when no MPI run holds this process, as a run of its own (session.run launches
    the ranks; its tables go to stderr). A launched run that gives no case raises
    NotImplementedError: asv's signal, from a benchmark's setup, that it has no figure."""
    if not (suite.uses_mpi and mpi.current() is None and not mpi.under_launcher()):
        info = next(i for i in suite.impls() if i.name == impl)
        ctx = RunContext(target=parse_target(target), policy=SamplingPolicy(budget_s=budget_s))
        try:
            result, = suite.run_case(params, info, ctx)
        finally:
            ctx.close()
        return result
    from .request import RunRequest
    from .session import run

    with tempfile.TemporaryDirectory(prefix="aibench-asv-") as tmp, contextlib.redirect_stdout(sys.stderr):
        try:
            report = run(RunRequest(suites=[suite.name], target=target, impls=[impl], record_asv=False,
                                    output=Path(tmp) / "case.json", time_budget=budget_s,
                                    ranks=int(os.environ.get("AIBENCH_RANKS", mpi.DEFAULT_RANKS)),
                                    params={key: [value] for key, value in params.items()}))
        except (UsageError, ValueError) as e:
            raise NotImplementedError(str(e)) from None
    cases = [c for c in report.cases if c.impl == impl]
    if not cases:
        raise NotImplementedError(f"launched run exited {report.exit_code}: {report.ended_by or 'no case saved'}")
    return cases[0]
