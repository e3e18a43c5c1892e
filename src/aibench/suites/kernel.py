"""What compute suites (gemm, attention, power) share: an impl whose operation is a kernel
call on random operands, checked against a float64 reference, and figures from its FLOPs."""

from __future__ import annotations

from typing import Any

from ..results import Metric, Samples, Validation
from .base import Impl, RunContext, Suite


class KernelRunner(Impl):
    """One impl's prepared kernel: buffers allocated and filled with random values.
    Subclasses set `params` and `seed` (KernelSuite.prepare does) and give `run`, `time`,
    `poison_output` and the suite's `validate`."""

    params: dict[str, Any]
    seed: int = 0

    def poison_output(self) -> None:
        """Fill the output with NaN (or a sentinel for integers) so that an output the
        kernel never wrote cannot pass validation."""
        raise NotImplementedError

    def validate(self) -> Validation:
        """Compare the output just computed with a float64 reference."""
        raise NotImplementedError

    def flops(self) -> float:
        raise NotImplementedError

    def check(self) -> Validation:
        self.poison_output()
        self.run()
        return self.validate()

    def work(self) -> float:
        return self.flops()


class CoreOpRunner:
    """A runner whose operation is one of aibench._core's ops (Gemm, Attention), built in
    __init__ as `self.op`: the kernel and its ISA path resolved once, in C++; run and time
    are the op's (a C++ loop on the steady clock)."""

    op: Any

    def run(self) -> None:
        self.op.run()

    def time(self, number: int) -> float:
        return self.op.time(number)


class KernelSuite(Suite):
    """A suite of kernels: figures are FLOP rates from the median time."""

    def prepare(self, params: dict[str, Any], impl: type[Impl], ctx: RunContext) -> Impl:
        op = impl(params, ctx)
        op.params, op.seed = params, ctx.seed
        return op

    def metrics(self, params: dict[str, Any], samples: Samples, op: KernelRunner) -> dict[str, Metric]:
        """`tflops` (decimal, from the median time) and `time_us`."""
        t = samples.summary.median
        return {"tflops": Metric(op.flops() / t / 1e12, "TFLOP/s", True), "time_us": Metric(t * 1e6, "us", False)}
