"""A user's pytest-benchmark file (or directory) as a suite: `aibench run --pytest-benchmark
PATH` (or `--suite pytest:PATH`). Every benchmark in it becomes a case of the run
document, with its samples and its params and extra_info, so that a data loader's or a
model step's benchmark lands in the same asv pages, `compare` and `accept` as the
built-in suites. The test's own assertions are the validation: a benchmark whose test
failed has no figures (pytest_benchmark.py runs pytest and reads its reports)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import UsageError
from ..pytest_benchmark import pytest_benchmark_unavailable, run_benchmarks, suite_name_for
from ..results import SKIPPED, CaseResult, Validation, now_iso
from ..targets import Target
from .base import Impl, ImplInfo, RunContext, Suite
from ..registry import register_suite_family

PREFIX = "pytest:"


class PytestBenchmark(Impl):
    name = "pytest-benchmark"
    description = "the file's benchmarks, timed by pytest-benchmark in a pytest subprocess"

    @classmethod
    def unavailable(cls, target: Target) -> str | None:
        return pytest_benchmark_unavailable()


@register_suite_family(PREFIX)
class PytestBenchmarkSuite(Suite):
    description = "a pytest-benchmark file: one case per benchmark"
    target_kinds = ("cpu",)  # the file runs on the host (a GPU benchmark names its device in extra_info)
    IMPLS = (PytestBenchmark,)
    in_default_run = False
    params: dict = {}

    def __init__(self, path: str):
        p = Path(path)
        if not p.exists():
            raise UsageError(f"--pytest-benchmark {path}: no such file or directory")
        if not (p.is_dir() or p.suffix == ".py"):
            raise UsageError(f"--pytest-benchmark {path}: not a .py file or a directory")
        self.path = p.resolve()
        self.name = suite_name_for(self.path)
        self.description = f"pytest-benchmark benchmarks of {path}"

    def default_cases(self, tier: str, target: Target) -> list[dict[str, Any]]:
        return [{}]

    def case_id(self, params: dict[str, Any]) -> str:
        return self.path.name

    def impl_classes(self) -> list[type[Impl]]:
        return list(self.IMPLS)  # no plugin impls: the file is the implementation

    def run_case(self, params: dict[str, Any], impls: list[ImplInfo] | ImplInfo, ctx: RunContext) -> list[CaseResult]:
        """The whole file at once: a result per benchmark in it."""
        reason = pytest_benchmark_unavailable()
        if reason is not None:
            return [CaseResult(suite=self.name, case_id=self.case_id(params), params={}, target=str(ctx.target),
                               impl=PytestBenchmark.name, status=SKIPPED, started_at=now_iso(),
                               validation=Validation(status=SKIPPED, reason=reason))]
        return run_benchmarks(self.path, suite=self.name, budget_s=ctx.policy.budget_s, seed=ctx.seed,
                              target=str(ctx.target))
