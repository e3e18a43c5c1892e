"""GEMM suite: C = A·B (row-major), FLOPs = 2mnk, on cpu and cuda targets.

Each impl is a GemmRunner class (cpu.py, cuda.py, jax.py) listed in IMPLS; the runners'
base (common.py) validates every case against a float64 reference on sampled rows and
columns, and the case template (suites/base.py) measures and reports.
"""

from __future__ import annotations

from typing import Any


from ...errors import UsageError
from ...targets import Target
from ...units import choice, parse_size
from ...dtypes import FORMATS, rate_unit
from ..base import TIERS, AsvSpec, AsvTrack, Param, per_target_asv_specs
from ..charts import Chart
from ..kernel import KernelSuite
from ...registry import register_suite
from . import cpu, cuda, jax
from .common import DTYPES

CPU_DTYPES = ("fp32", "fp64", "bf16", "int8")
# The quick tier keeps the whole run short: bf16 and int8 only at 2048 cubed.
_CPU_QUICK_FLOAT = ("fp32", "fp64")
_CPU_QUICK_LOWP = ("bf16", "int8")
CUDA_DTYPES = ("fp64", "fp32", "tf32", "bf16", "fp16", "fp8", "int8")

# Transformer GEMMs, (tokens, hidden, ffn) of Llama-3 8B and 70B: the MLP up-projection
# (tokens x ffn x hidden) and down-projection (tokens x hidden x ffn).
_MODELS = {"8b": (4096, 14336), "70b": (8192, 28672)}


def _squares(sizes, dtypes):
    return [{"m": s, "n": s, "k": s, "dtype": d} for d in dtypes for s in sizes]


def _transformer(tokens, dtypes):
    cases = []
    for d in dtypes:
        for hidden, ffn in _MODELS.values():
            cases.append({"m": tokens, "n": ffn, "k": hidden, "dtype": d})
            cases.append({"m": tokens, "n": hidden, "k": ffn, "dtype": d})
    return cases


@register_suite
class GemmSuite(KernelSuite):
    name = "gemm"
    description = "Dense matrix multiply C = A·B, TFLOP/s (2mnk), validated against float64"
    params = {
        "m": Param("m", parse_size, "rows of A and C"),
        "n": Param("n", parse_size, "columns of B and C"),
        "k": Param("k", parse_size, "inner dimension"),
        "dtype": Param("dtype", choice(DTYPES), "element type: " + " ".join(DTYPES)),
    }
    target_kinds = ("cpu", "cuda", "jax")
    comparisons = (("aibench", "blas"), ("aibench", "torch"), ("cublas", "torch"), ("aibench", "cublas"))
    IMPLS = (*cpu.IMPLS, *cuda.IMPLS, jax.JaxGemmRunner)
    # Square GEMMs only: transformer shapes and m-sweeps have no square-size axis.
    charts = (Chart(name="gemm-{split}", title="GEMM {split}: TFLOP/s against square size (m = n = k)", x="m",
                    x_label="m = n = k", log_x=True, metric="tflops", y_label=rate_unit, series=(), split="dtype",
                    split_order=tuple(FORMATS), where=lambda p: p["m"] == p["n"] == p["k"], peaks=True),)
    cpu_bytes = staticmethod(cpu.memory_needed)  # what one impl holds (KernelSuite.case_bytes)
    cuda_bytes = staticmethod(cuda.device_bytes)

    def default_cases(self, tier: str, target: Target) -> list[dict[str, Any]]:
        if target.kind == "cpu":
            if tier == "quick":
                return _squares([512, 1024, 2048], _CPU_QUICK_FLOAT) + _squares([2048], _CPU_QUICK_LOWP)
            if tier == "standard":
                return _squares([256, 512, 1024, 2048, 4096], CPU_DTYPES) + _transformer(512, CPU_DTYPES)
            return _squares([256, 512, 1024, 2048, 4096, 8192], CPU_DTYPES) + _transformer(2048, CPU_DTYPES)
        if target.kind == "cuda":
            if tier == "quick":
                return _squares([4096, 8192], CUDA_DTYPES)
            squares = _squares([1024, 2048, 4096, 8192, 16384], CUDA_DTYPES)
            cases = squares + _transformer(8192, CUDA_DTYPES)
            if tier == "full":
                # Maximum-achievable-FLOPS search (mamf-finder style): m swept, n = k = 4096.
                cases += [{"m": m, "n": 4096, "k": 4096, "dtype": d}
                          for d in CUDA_DTYPES for m in range(256, 16384 + 1, 256)]
            return cases
        if target.kind == "jax":
            from ...targets.jax import jax_platform

            if jax_platform(target) in ("tpu", "gpu"):
                return _squares([4096, 8192] if tier == "quick" else [1024, 2048, 4096, 8192, 16384],
                                ("bf16", "fp32", "int8"))
            return _squares([512, 1024, 2048] if tier == "quick" else [256, 512, 1024, 2048, 4096], ("fp32", "bf16"))
        raise UsageError(f"suite gemm does not run on target {target}")

    def asv_specs(self) -> list[AsvSpec]:
        def values(kind: str) -> tuple[tuple, ...]:
            if kind == "jax":
                from .jax import JAX_DTYPES

                return tuple(f"{n}x{n}x{n}" for n in (256, 512, 1024, 2048, 4096, 8192, 16384)), JAX_DTYPES
            target = Target(kind, 0 if kind == "cuda" else None)
            tiers = TIERS if kind == "cpu" else ("quick", "standard")  # the cuda m-sweep stays out of asv
            shapes = dict.fromkeys(_shape(c) for t in tiers for c in self.default_cases(t, target))
            return tuple(shapes), CPU_DTYPES if kind == "cpu" else CUDA_DTYPES

        return per_target_asv_specs(
            self, "Gemm", ("cpu", "cuda", "jax"), ("shape", "dtype"), lambda p: (_shape(p), p["dtype"]), values,
            (AsvTrack("track_tflops", "tflops", "TFLOP/s"), AsvTrack("track_time", "time_us", "seconds", 1e-6)),
            version="1")

    def check_case(self, params: dict[str, Any], target: Target) -> None:
        dtype = params["dtype"]
        if target.kind == "jax":
            return
        if target.kind == "cpu" and dtype not in CPU_DTYPES:
            raise UsageError(f"gemm dtype {dtype} is not available on the cpu target (cpu: {', '.join(CPU_DTYPES)})")
        if target.kind == "cpu":
            from .cpu import check_fits_in_memory

            check_fits_in_memory(params)

    def case_id(self, params: dict[str, Any]) -> str:
        return f"{_shape(params)}-{params['dtype']}"


def _shape(params: dict[str, Any]) -> str:
    return f"{params['m']}x{params['n']}x{params['k']}"
