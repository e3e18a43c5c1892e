"""What compute suites (gemm, attention) share: a prepared kernel run, and the one way a
(case, impl) pair becomes a CaseResult: measure, validate, then (only if valid) report."""

from __future__ import annotations

import time
from typing import Any, Callable

from ..errors import SkipCase
from ..harness import CallTooSlow, Measurement, measure
from ..results import FAILED, PASSED, SKIPPED, CaseResult, Validation, now_iso
from .base import Impl, RunContext


class KernelRunner:
    """One impl's prepared operation: buffers allocated and filled with random values."""

    def timer(self, number: int) -> float:
        """Seconds for `number` back-to-back operations."""
        raise NotImplementedError

    def run_once(self) -> None:
        """One operation on the first buffer set, finished before returning."""
        raise NotImplementedError

    def poison_output(self) -> None:
        """Fill the output with NaN (or a sentinel for integers) so that an output the
        kernel never wrote cannot pass validation."""
        raise NotImplementedError

    def detail(self) -> dict:
        return {}

    def estimated_call_s(self) -> float | None:
        """Seconds one operation is expected to take, from a small probe, or None when the
        impl is never that slow. A call is uninterruptible, so an impl that would run past
        the policy's max_call_s must be stopped before its first full call, not after it
        (torch's bf16 matmul on a CPU without AVX512_BF16: a 4096^3 call takes minutes)."""
        return None

    def peak(self) -> dict | None:
        return None

    def telemetry(self) -> dict | None:
        return None

    def close(self) -> None:
        pass


def run_kernel_case(suite_name: str, case_id: str, params: dict[str, Any], impl: Impl, ctx: RunContext,
                    make_runner: Callable[[dict[str, Any], RunContext], KernelRunner],
                    validate: Callable[[KernelRunner, dict[str, Any], int], Validation],
                    flops: Callable[[dict[str, Any]], float]) -> CaseResult:
    result = CaseResult(suite=suite_name, case_id=case_id, params=dict(params), target=str(ctx.target),
                        impl=impl.name, status=SKIPPED, started_at=now_iso())
    started = time.perf_counter()
    reason = impl.unavailable_reason(ctx.target)
    if reason is not None:
        result.validation = Validation(status=SKIPPED, reason=reason)
        return result
    runner: KernelRunner | None = None
    try:
        runner = make_runner(params, ctx)
        result.impl_detail = runner.detail()
        estimate = runner.estimated_call_s()
        if estimate is not None and estimate > ctx.policy.max_call_s:
            raise CallTooSlow(f"one call would take about {estimate:.0f} s (from a smaller probe), over the "
                              f"{ctx.policy.max_call_s:g} s cap per call (--max-call-s); not run")
        measurement = measure(runner.timer, ctx.policy)
        result.stats = measurement.to_dict()
        # Validate after timing, on a freshly poisoned output: a wrong result is a
        # failure and never a number.
        runner.poison_output()
        runner.run_once()
        result.validation = validate(runner, params, ctx.seed)
        result.telemetry = runner.telemetry()
        if result.validation.status == PASSED:
            result.status = PASSED
            add_flop_metrics(result, flops(params), measurement, runner.peak())
            if ctx.options.get("power"):
                add_energy(result, runner, measurement, flops(params), ctx)
        else:
            result.status = FAILED
            result.error = result.validation.reason
    except (SkipCase, CallTooSlow) as e:
        result.status = SKIPPED
        result.validation = Validation(status=SKIPPED, reason=str(e))
    except Exception as e:  # noqa: BLE001 - any failure fails only this case
        result.status = FAILED
        result.error = f"{type(e).__name__}: {e}"
    finally:
        if runner is not None:
            runner.close()
        result.duration_s = time.perf_counter() - started
    return result


def add_flop_metrics(result: CaseResult, flops: float, measurement: Measurement, peak: dict | None) -> None:
    """`tflops` (decimal, from the median time) and `time_us`, and percent of peak."""
    t = measurement.summary.median
    tflops = flops / t / 1e12
    result.metrics["tflops"] = _metric(tflops, "TFLOP/s", True)
    result.metrics["time_us"] = _metric(t * 1e6, "us", False)
    if peak is not None:
        result.peak = peak
        result.percent_of_peak = 100.0 * tflops / peak["value"]


def add_energy(result: CaseResult, runner: KernelRunner, measurement: Measurement, flops: float,
               ctx: RunContext) -> None:
    """The sustained power window: energy metrics from the meter(s) covering the device,
    or the reason there are none (never an estimate)."""
    from ..energy.window import measure_energy

    result.power = measure_energy(runner.timer, measurement.summary.median, flops, ctx.target, ctx.options)
    primary = result.power.get("primary")
    if not primary:
        return
    result.metrics["gflops_per_watt"] = _metric(primary["gflops_per_watt"], "GFLOP/s/W", True)
    result.metrics["joules_per_tflop"] = _metric(primary["joules_per_tflop"], "J/TFLOP", False)
    result.metrics["avg_watts"] = _metric(primary["avg_watts"], "W", False)
    result.metrics["energy_j"] = _metric(primary["joules"], "J", False)


def _metric(value, unit, higher):
    from ..results import Metric

    return Metric(value, unit, higher)


def impls_from_runners(suite: str, kinds: tuple[str, ...],
                       runners: Callable[[str], dict[str, type]]) -> list[Impl]:
    """The Impl list of a suite whose impls are runner classes per target kind (each with
    a `description` and an `unavailable(target) -> reason | None`)."""

    def reason_for(name: str):
        def reason(target) -> str | None:
            table = runners(target.kind)
            if name not in table:
                return f"{suite} impl {name!r} does not run on the {target.kind} target"
            return table[name].unavailable(target)
        return reason

    names = list(dict.fromkeys(n for kind in kinds for n in runners(kind)))
    return [Impl(n, "; ".join(f"{k}: {runners(k)[n].description}" for k in kinds if n in runners(k)),
                 tuple(k for k in kinds if n in runners(k)), reason_for(n)) for n in names]
