"""What compute suites (gemm, attention, power) share: an impl whose operation is a kernel
call on random operands, checked against a float64 reference, and figures from its FLOPs."""

from __future__ import annotations

import functools
import math
from typing import Any, Callable, ClassVar

from ..dtypes import rate_unit
from ..errors import SkipCase
from ..faults import corrupts_output, inject
from ..fit import amount, fits
from ..results import ContextKey, Metric, Samples, Validation
from .base import Impl, ImplInfo, RunContext, Suite

# Loop iterations and trials of the Python-overhead probe (python_overhead_s).
_OVERHEAD_CALLS = 200
_OVERHEAD_TRIALS = 5


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
    __init__ as `self.op` with case_threads() threads: the kernel and its ISA path
    resolved once, in C++; run and time are the op's (a C++ loop on the steady clock)."""

    op: Any

    def run(self) -> None:
        self.op.run()

    def time(self, number: int) -> float:
        return self.op.time(number)

    def timing_detail(self) -> dict:
        return {"loop": "C++ loop, steady clock"}  # no interpreter inside the timed loop


def python_overhead_s(loop: Callable[[int], float]) -> float:
    """Seconds per call that a timed Python loop adds: the fastest of a few runs of
    `loop(n)` / n, where `loop` is the impl's own timed loop on operands too small to
    cost anything (1 x 1): the interpreter's loop, indexing and the library's dispatch.
    An upper bound of the interpreter's share of each timed call of the real case."""
    loop(1)  # first-call set-up
    return min(loop(_OVERHEAD_CALLS) / _OVERHEAD_CALLS for _ in range(_OVERHEAD_TRIALS))


@functools.lru_cache(maxsize=None)
def _jax_overhead_s(dev) -> float:
    import jax
    import jax.numpy as jnp

    from ..targets import jax as jx

    one = jax.device_put(jnp.zeros((1,), jnp.float32), dev)
    return python_overhead_s(jx.timer(jax.jit(lambda x: x + 1), (one,)))


def jax_timing_detail(dev) -> dict:
    """How a JAX runner is timed, with the Python overhead of its loop: the same timer
    (targets.jax.timer: calls dispatched back to back, the last one waited for) on a
    jitted function of a 1-element array on the same device (measured once per device: it
    does not depend on the case)."""
    return {"loop": "Python loop of asynchronous dispatches, block_until_ready on the last, perf_counter",
            "python_overhead_s": _jax_overhead_s(dev)}


class PythonLoopRunner:
    """A runner whose timed loop is Python around a library call (numpy, torch): there
    is no loop API to call into, so the loop's own cost per call is measured on tiny
    operands (python_overhead_s) and recorded beside the figure. The runner gives
    `tiny()`: the same runner on operands of size 1 (its loop, nothing to compute)."""

    _overhead: dict | None = None

    def check(self) -> Validation:
        """The overhead is measured after the case's timing (never for an impl that was
        not run), then the usual check."""
        if self._overhead is None:
            try:
                tiny = self.tiny()
                try:
                    self._overhead = {"python_overhead_s": python_overhead_s(tiny.time)}
                finally:
                    tiny.close()
            except (SkipCase, RuntimeError) as e:  # the library refuses the tiny shape
                self._overhead = {"python_overhead_s": None,
                                  "python_overhead_note": f"not measured: {str(e).splitlines()[0]}"}
        return super().check()

    def timing_detail(self) -> dict:
        return {"loop": "Python loop, perf_counter", **(self._overhead or {})}


def _user_threads(detail: dict[str, Any], params: dict[str, Any]) -> str | None:
    """A thread count the user chose (OMP_NUM_THREADS) makes its own case; the default,
    every core the node gives the process, is what a node-to-node comparison compares."""
    if (isinstance(detail.get("threads"), int) and detail.get("threads_rule") == "OMP_NUM_THREADS"
            and not {"threads", "concurrency"} & set(params)):
        return f"threads={detail['threads']}"
    return None


class KernelSuite(Suite):
    """A suite of kernels: figures are FLOP rates from the median time. The impls of a
    case are measured together, interleaved (A B B A windows), unless they do not fit in
    memory together (measured_apart)."""

    context_keys = (ContextKey("threads", _user_threads),)

    def group_impls(self, params: dict[str, Any], impls: list[ImplInfo]) -> list[list[ImplInfo]]:
        return [impls] if impls else []

    # bytes one impl of a case holds: fn(params) on the cpu and cuda targets (None: unknown)
    cpu_bytes: ClassVar[Callable[[dict[str, Any]], int] | None] = None
    cuda_bytes: ClassVar[Callable[[dict[str, Any]], int] | None] = None

    def case_bytes(self, params: dict[str, Any], target) -> tuple[int, int] | None:
        """(bytes one impl of the case holds, bytes available) on the target's memory, or
        None where the suite does not know."""
        if target.kind == "cpu" and self.cpu_bytes is not None:
            import psutil

            return type(self).cpu_bytes(params), psutil.virtual_memory().available
        if target.kind == "cuda" and self.cuda_bytes is not None:
            from ..targets import cuda as cu

            if cu.unavailable_reason(target) is not None:  # no GPU: the impls skip, saying why
                return None
            return type(self).cuda_bytes(params), cu.free_device_bytes(target.index or 0)
        return None

    def measured_apart(self, params: dict[str, Any], group: list[ImplInfo], ctx: RunContext) -> str | None:
        sizes = self.case_bytes(params, ctx.target)
        if sizes is None:
            return None
        one, available = sizes
        reason = fits(one * len(group), available, f"the operands of {len(group)} impls together",
                      held=f"{len(group)} x {amount(one)}",
                      of="of GPU memory free" if ctx.target.kind == "cuda" else "of memory available")
        return f"{reason}: measured one after the other" if reason else None

    def prepare(self, params: dict[str, Any], impl: type[Impl], ctx: RunContext) -> Impl:
        op = impl(params, ctx)
        op.params, op.seed = params, ctx.seed
        return op

    def metrics(self, params: dict[str, Any], samples: Samples, op: KernelRunner) -> dict[str, Metric]:
        """`tflops` (decimal, from the median time; int8 in TOPS) and `time_us`."""
        t = samples.summary.median
        return {"tflops": Metric(op.flops() / t / 1e12, rate_unit(params.get("dtype", "")), True),
                "time_us": Metric(t * 1e6, "us", False)}
