"""`stream`: memory bandwidth of STREAM's copy and triad kernels, in numpy.

A whole suite in one file: its parameters, default cases, one impl and its metrics.
aibench's case template does the rest (timing through the harness, validation before
any figure, skip and failure handling, the run document, asv, compare, accept).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from aibench.results import FAILED, PASSED, Metric, Samples, Validation
from aibench.suites.base import Impl, Param, RunContext, Suite
from aibench.units import choice, parse_size, size_label

KERNELS = {"copy": 2, "triad": 3}  # arrays each element of the kernel reads or writes
SCALAR = 3.0


class NumpyStream(Impl):
    name = "numpy"
    description = "numpy ufuncs with out= (no temporaries): copy a = b, triad a = b + s*c"

    def __init__(self, params: dict[str, Any], ctx: RunContext):
        n = params["size"] // 8
        rng = np.random.default_rng(ctx.seed)
        self.kernel, self.b, self.c = params["kernel"], rng.random(n), rng.random(n)
        self.a = np.empty(n)

    def run(self) -> None:
        if self.kernel == "copy":
            np.copyto(self.a, self.b)
        else:
            np.multiply(self.c, SCALAR, out=self.a)
            np.add(self.a, self.b, out=self.a)

    def time(self, number: int) -> float:
        import time

        start = time.perf_counter()
        for _ in range(number):
            self.run()
        return time.perf_counter() - start

    def check(self) -> Validation:
        """Recompute sampled elements one by one (a different path than the ufuncs)."""
        self.a.fill(np.nan)
        self.run()
        idx = np.unique(np.linspace(0, self.a.size - 1, 64).astype(int))
        want = self.b[idx] if self.kernel == "copy" else self.b[idx] + SCALAR * self.c[idx]
        wrong = int(np.count_nonzero(self.a[idx] != want))
        if wrong:
            return Validation(status=FAILED, reason=f"wrong result: {wrong} of {idx.size} sampled elements")
        return Validation(status=PASSED, max_rel_error=0.0, tolerance=0.0)


class StreamSuite(Suite):
    name = "stream"
    description = "Memory bandwidth of STREAM copy and triad (numpy), GB/s"
    params = {
        "kernel": Param("kernel", choice(KERNELS), "copy or triad"),
        "size": Param("size", parse_size, "bytes per array (fp64)"),
    }
    target_kinds = ("cpu",)
    IMPLS = (NumpyStream,)
    in_default_run = False  # asked for with --suite stream

    def default_cases(self, tier: str, target) -> list[dict[str, Any]]:
        sizes = [64 << 20] if tier == "quick" else [16 << 20, 64 << 20, 256 << 20]
        return [{"kernel": k, "size": s} for k in KERNELS for s in sizes]

    def case_id(self, params: dict[str, Any]) -> str:
        return f"{params['kernel']}-{size_label(params['size'])}"

    def metrics(self, params: dict[str, Any], samples: Samples, op: Impl) -> dict[str, Metric]:
        t = samples.summary.median
        moved = KERNELS[params["kernel"]] * params["size"]
        return {"gbps": Metric(moved / t / 1e9, "GB/s", True), "time_us": Metric(t * 1e6, "us", False)}
