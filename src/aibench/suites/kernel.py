"""What compute suites (gemm, attention, power) share: an impl whose operation is a kernel
call on random operands, checked against a float64 reference, and figures from its FLOPs."""

from __future__ import annotations

import math
from typing import Any

from ..faults import corrupts_output, inject
from ..results import Metric, Samples, Validation
from .base import Impl, RunContext, Suite


class KernelRunner(Impl):
    """One impl's prepared kernel: buffers allocated and filled with random values.
    Subclasses set `params` and `seed` (KernelSuite.prepare does) and give `run`, `time`,
    `poison_output`, `output` and the suite's `validate`."""

    params: dict[str, Any]
    seed: int = 0

    def poison_output(self) -> None:
        """Fill the output with NaN (or a sentinel for integers) so that an output the
        kernel never wrote cannot pass validation."""
        raise NotImplementedError

    def collect_timed_output(self) -> None:
        """Store the output of the last timed call where validate() reads it. A no-op for
        kernels that write their output buffer; runners whose timed call returns a new
        array (torch's SDPA and _int_mm, JAX, numpy attention) keep the last one."""

    def output(self) -> tuple[Any, str]:
        """(the output validate() reads, its format): for fault injection."""
        raise NotImplementedError

    def set_output(self, out: Any) -> None:
        """Replace the output by a corrupted copy (outputs that cannot change in place)."""

    def validate(self) -> Validation:
        """Compare the output of the last timed call with a float64 reference."""
        raise NotImplementedError

    def flops(self) -> float:
        raise NotImplementedError

    def check(self) -> Validation:
        """Validate what the timed loop computes: one more timed call (on buffer set 0)
        into a poisoned output, then (tests only) the injected fault, then validate."""
        self.poison_output()
        self.time(1)
        self.collect_timed_output()
        if corrupts_output(self.name):
            out, fmt = self.output()
            self.set_output(inject(self.name, out, fmt, self.seed))
        return self.validate()

    def work(self) -> float:
        return self.flops()


# z of the scale check: far in the tail of the rounding noise of a correct kernel.
_SCALE_Z = 7.0


def scale_error(sums: tuple[float, float, float], n: int, u_out: float, acc_noise: float) -> str | None:
    """A whole-output scale error hides under per-element tolerances (1% is 2.5 ulps of
    bf16): the least-squares scale s of the output against the reference, from
    sums = (sum (got - ref)·ref, sum ref², sum ref⁴) over n checked elements, must stay
    within the noise of round-to-nearest (zero-mean, |e| <= u_out·|ref| per element, plus
    the accumulation noise acc_noise·rms(ref)), z = 7, plus u_out/2 for a truncating
    conversion. None when it does, else why not."""
    cross, sq, quad = sums
    if sq <= 0 or n == 0:
        return None
    scale = cross / sq
    rms = math.sqrt(sq / n)
    bound = _SCALE_Z * (2 * u_out * math.sqrt(quad) + acc_noise * rms * math.sqrt(sq)) / sq + u_out / 2
    if abs(scale) > bound:
        return f"the output is the reference scaled by {1 + scale:.5f} (more than rounding allows: {bound:.2g})"
    return None


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
