"""Power suite: GEMM at the peak shape of each dtype with the sustained power window on,
giving energy per FLOP (J/TFLOP, GFLOP/s per watt) per dtype, impl and target."""

from __future__ import annotations

import dataclasses
from typing import Any

from ..results import CaseResult
from ..targets import Target
from .base import AsvSpec, AsvTrack, ImplInfo, RunContext, per_target_asv_specs
from .gemm import CPU_DTYPES, CUDA_DTYPES, GemmSuite
from ..registry import register_suite


@register_suite
class PowerSuite(GemmSuite):
    """The GEMM suite's cases and impls, with the power window always on."""

    name = "power"
    description = "Energy per FLOP: GEMM at its peak shape per dtype under a sustained power window"
    target_kinds = ("cpu", "cuda")
    in_default_run = False  # a sustained window per case: asked for with --suite power

    def impl_classes(self):
        return GemmSuite().impl_classes()  # gemm's, with those plugins add to gemm

    def default_cases(self, tier: str, target: Target) -> list[dict[str, Any]]:
        if target.kind == "cuda":
            size, dtypes = 8192, CUDA_DTYPES
        else:
            size, dtypes = (2048 if tier == "quick" else 4096), CPU_DTYPES
        return [{"m": size, "n": size, "k": size, "dtype": d} for d in dtypes]

    def run_case(self, params: dict[str, Any], impls: list[ImplInfo] | ImplInfo, ctx: RunContext) -> list[CaseResult]:
        return super().run_case(params, impls, dataclasses.replace(ctx, options={**ctx.options, "power": True}))

    def asv_specs(self) -> list[AsvSpec]:
        def values(kind: str) -> tuple[tuple, ...]:
            target = Target(kind, 0 if kind == "cuda" else None)
            shapes = dict.fromkeys(f"{c['m']}x{c['n']}x{c['k']}" for t in ("quick", "standard")
                                   for c in self.default_cases(t, target))
            return tuple(shapes), CPU_DTYPES if kind == "cpu" else CUDA_DTYPES

        return per_target_asv_specs(
            self, "Power", self.target_kinds, ("shape", "dtype"), lambda p: (f"{p['m']}x{p['n']}x{p['k']}", p["dtype"]),
            values, (AsvTrack("track_gflops_per_watt", "gflops_per_watt", "GFLOP/s/W"),
                     AsvTrack("track_joules_per_tflop", "joules_per_tflop", "J/TFLOP")), version="1")
