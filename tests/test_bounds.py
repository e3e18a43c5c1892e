"""Every headline figure is held to an independent bound (Suite.check_bound): a figure above
it fails its case with `exceeds physical bound: ...`. The bound's inputs that a test
cannot control (the clock, the FMA loop's rate) are set here to known values, so that each
test is deterministic on any machine, however busy."""

import json

import jsonschema
import pytest

from aibench.harness import SamplingPolicy
from aibench.peaks import gpu_peak
from aibench.targets import bound_for_peak
from aibench.results import CaseResult, Metric, Samples, Validation
from aibench.suites import all_suites
from aibench.suites.base import Impl, ImplInfo, RunContext, Suite, impl_infos
from aibench.targets import cpu as cpu_target
from aibench.targets import parse_target

CLOCK_GHZ = 30.0  # far above any real clock: every real figure stays below the bounds set here
CORES = 2


@pytest.fixture
def known_cpu(monkeypatch):
    """A CPU of CORES cores at CLOCK_GHZ with two 256-bit FMA units (512 bits per cycle)
    whose FMA loops measure `rates[(isa, dtype)]` TFLOP/s (default: 99% of the correct
    theoretical peak, as a real machine measures)."""
    theory = {"fp32": CORES * 16 * 2 * CLOCK_GHZ / 1e3, "fp64": CORES * 8 * 2 * CLOCK_GHZ / 1e3}
    rates = {}

    def fake_loop(isa, dtype, windows=20, threads=0):
        every_cpu = 1e3 * rates.get((isa, dtype), 0.99 * theory[dtype])
        return {"gflops": every_cpu / CORES if threads == 1 else every_cpu}  # one core's share

    monkeypatch.setattr(cpu_target, "measured_clock_ghz", lambda: CLOCK_GHZ)
    monkeypatch.setattr(cpu_target, "physical_cores", lambda: CORES)
    monkeypatch.setattr(cpu_target, "fma_bits_per_cycle", lambda isa, *a, **k: (512, "two 256-bit FMA units (test)"))
    monkeypatch.setattr(cpu_target._core, "measure_fma_peak", fake_loop)
    monkeypatch.setattr(cpu_target, "_LOOP_RATES", {})
    return theory, rates


def test_the_cpu_peak_counts_two_flops_per_fma(known_cpu):
    """cores x lanes x 2 (multiply and add) x clock: kills the mutant that drops the 2."""
    theory, _ = known_cpu
    assert cpu_target.cpu_peak_tflops("fp32", "avx512")["value"] == pytest.approx(theory["fp32"])
    assert cpu_target.cpu_peak_tflops("fp64", "avx2")["value"] == pytest.approx(theory["fp64"])
    assert cpu_target.cpu_peak_tflops("bf16", "avx512_bf16")["value"] == pytest.approx(2 * theory["fp32"])


def test_the_bound_is_the_measured_rate_of_the_paths_instructions(known_cpu):
    theory, rates = known_cpu
    rates[("avx512", "fp32")] = 0.5 * theory["fp32"]  # e.g. a VM's share of the cores
    bound = cpu_target.compute_bound("bf16", "avx512_bf16")
    assert bound["value"] == pytest.approx(cpu_target.FIGURE_OVER_FMA * 2 * 0.5 * theory["fp32"])
    assert "refused" not in bound and "avx512 fp32 FMA loop" in bound["source"]


def _run_gemm(impl="aibench", dtype="fp32"):
    suite = all_suites()["gemm"]
    info = next(i for i in suite.impls() if i.name == impl)
    ctx = RunContext(target=parse_target("cpu"), policy=SamplingPolicy(budget_s=0.05, warmup_s=0.01, settle_s=0.0))
    result, = suite.run_case({"m": 64, "n": 64, "k": 64, "dtype": dtype}, info, ctx)
    return result


def test_a_correct_peak_passes_and_the_bound_is_recorded(known_cpu):
    theory, _ = known_cpu
    r = _run_gemm()
    assert r.status == "passed", r.error
    assert r.bound["metric"] == "tflops" and r.bound["value"] == pytest.approx(1.05 * 0.99 * theory["fp32"])
    assert r.bound["refused"] is None and r.percent_of_peak < 100


def test_a_theoretical_peak_below_the_measured_fma_loop_fails_the_case(known_cpu):
    """A peak that is too low (the FMA factor 2 dropped, a wrong clock or lane count) is
    refused when the register-only loop measures more than 1.1x of it: the case fails."""
    theory, rates = known_cpu
    rates[("avx512", "fp32")] = rates[("avx2", "fp32")] = 1.2 * theory["fp32"]
    r = _run_gemm()
    assert r.status == "failed" and not r.metrics
    assert r.error.startswith("exceeds physical bound: measured ") and "theoretical peak is refused" in r.error
    assert r.bound["refused"] in r.error


def test_a_figure_above_the_measured_fma_rate_fails_the_case_even_measured_again(known_cpu):
    _, rates = known_cpu
    rates[("avx512", "fp32")] = rates[("avx2", "fp32")] = 1e-9  # every measurement, the fresh ones too
    r = _run_gemm()
    assert r.status == "failed" and r.error.startswith("exceeds physical bound: tflops "), r.error
    assert "1.05 x the measured FMA rate" in r.error


def test_a_bound_measured_low_once_is_measured_again_before_failing(known_cpu, monkeypatch):
    """A first measurement disturbed by other processes must not fail a good figure."""
    theory, _ = known_cpu
    monkeypatch.setattr(cpu_target, "_LOOP_RATES", {("avx512", "fp32"): 1e-9, ("avx2", "fp32"): 1e-9})
    r = _run_gemm()
    assert r.status == "passed", r.error
    assert r.bound["value"] == pytest.approx(1.05 * 0.99 * theory["fp32"])


# --- the central check, for any suite (a plugin's included) -----------------------------

class _FixedRate(Impl):
    """An impl that reports `rate` TFLOP/s of bf16 on an H100 SXM (datasheet 989)."""
    name = "fixed"
    target_kinds = ("cpu",)
    rate = 0.0

    def __init__(self, params, ctx):
        pass

    def measure(self, policy):
        return Samples([1e-3, 1e-3, 1e-3])

    def check(self):
        return Validation("passed", 0.0, 0.0)

    def peak(self):
        return gpu_peak("NVIDIA H100 80GB HBM3", "bf16")


class _PluginSuite(Suite):
    name = "plugin-like"

    def metrics(self, params, samples, op):
        return {"tflops": Metric(op.rate, "TFLOP/s", True)}


@pytest.mark.parametrize("rate, status", [(900.0, "passed"), (1000.0, "failed")])
def test_a_gpu_figure_is_held_to_the_datasheet_peak(rate, status, monkeypatch):
    monkeypatch.setattr(_FixedRate, "rate", rate)
    ctx = RunContext(target=parse_target("cpu"), policy=SamplingPolicy(budget_s=0.01))
    r, = _PluginSuite().run_case({}, impl_infos([_FixedRate])[0], ctx)
    assert r.status == status and r.bound["value"] == 989 and "H100 SXM5" in r.bound["source"]
    if status == "failed":
        assert r.error == ("exceeds physical bound: tflops 1000 TFLOP/s > 989 TFLOP/s (datasheet dense peak, "
                           "H100 SXM5 80GB bf16 (maximum boost clock))")


def test_a_datasheet_bound_is_the_datasheet_peak():
    assert bound_for_peak(gpu_peak("x", "fp8", "10de:2335"))["value"] == 1979
    assert bound_for_peak(None) is None


def test_the_inflate_fault_fails_through_the_bound(monkeypatch):
    """AIBENCH_TEST_FAULT=IMPL:inflate leaves validation alone and triples the rates."""
    monkeypatch.setattr(_FixedRate, "rate", 400.0)
    monkeypatch.setenv("AIBENCH_TEST_FAULT", "fixed:inflate")
    ctx = RunContext(target=parse_target("cpu"), policy=SamplingPolicy(budget_s=0.01))
    r, = _PluginSuite().run_case({}, impl_infos([_FixedRate])[0], ctx)
    assert r.status == "failed" and r.validation.status == "failed"
    assert r.error.startswith("exceeds physical bound: tflops 1200 TFLOP/s > 989 TFLOP/s")


def test_the_bound_is_in_the_schema():
    from test_schema_docs import SCHEMA

    case = CaseResult(suite="gemm", case_id="c", params={}, target="cpu", impl="aibench", status="passed",
                      metrics={"tflops": Metric(1.0, "TFLOP/s", True)}, validation=Validation("passed"),
                      bound={"metric": "tflops", "value": 2.0, "unit": "TFLOP/s", "source": "s", "refused": None})
    jsonschema.validate(json.loads(json.dumps(case.to_dict())), {**SCHEMA["$defs"]["case"], "$defs": SCHEMA["$defs"]})
    assert CaseResult.from_dict(case.to_dict()).bound["value"] == 2.0


def test_a_busy_machine_still_refuses_a_halved_peak(known_cpu, monkeypatch):
    """Other processes disturb the loop on every CPU (it measures 5% of the peak) but not
    every window of the loop on one thread: one core's rate times the cores still shows
    that a peak half the true one is wrong."""
    theory, _ = known_cpu

    def busy(isa, dtype, windows=20, threads=0):
        full = 1e3 * theory[dtype]
        return {"gflops": full / CORES if threads == 1 else 0.05 * full}

    monkeypatch.setattr(cpu_target._core, "measure_fma_peak", busy)
    monkeypatch.setattr(cpu_target, "measured_clock_ghz", lambda: CLOCK_GHZ / 2)  # the peak halved
    bound = cpu_target.compute_bound("fp32", "avx512")
    assert bound["value"] == pytest.approx(1.05 * theory["fp32"])
    assert "theoretical peak is refused" in bound["refused"]
