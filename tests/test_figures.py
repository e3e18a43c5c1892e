"""The formulas behind the headline figures, against their published definitions and
hand-computed values (each kills the arithmetic slips scripts/mutation_test.py makes)."""

from __future__ import annotations

import pytest

from aibench.peaks import tpu_peak
from aibench.results import Samples
from aibench.suites.gemm import GemmSuite
from aibench.suites.gemm.common import GemmRunner
from aibench.suites.interconnect.common import busbw_factor


@pytest.mark.parametrize("nranks, factor", [(1, 0.0), (2, 1.0), (3, 4 / 3), (4, 1.5), (8, 1.75)])
def test_busbw_factor_is_nccl_tests_two_n_minus_one_over_n(nranks, factor):
    """nccl-tests PERFORMANCE.md: all-reduce busbw = algbw x 2(n-1)/n."""
    assert busbw_factor(nranks) == pytest.approx(factor, rel=1e-15)


def test_busbw_factor_of_no_ranks_is_zero_not_a_division_by_zero():
    assert busbw_factor(0) == 0.0


def _gemm_runner(m: int, n: int, k: int) -> GemmRunner:
    runner = GemmRunner.__new__(GemmRunner)  # the formula only: no buffers
    runner.params = {"m": m, "n": n, "k": k, "dtype": "fp32"}
    return runner


def test_gemm_flops_are_two_m_n_k():
    assert _gemm_runner(3, 5, 7).flops() == 2 * 3 * 5 * 7


@pytest.mark.parametrize("dtype, unit", [("fp32", "TFLOP/s"), ("int8", "TOPS")])
def test_kernel_figures_are_flops_over_the_median_time(dtype, unit):
    """tflops = FLOPs / median seconds / 1e12 (decimal), time_us = median x 1e6; the median
    of 1, 2 and 4 s is 2 s, so a mean (7/3 s) or any other statistic gives another figure."""
    runner = _gemm_runner(1000, 1000, 1500)  # 3e9 FLOPs
    samples = Samples([1.0, 2.0, 4.0])
    figures = GemmSuite().metrics({"dtype": dtype}, samples, runner)
    assert figures["tflops"].value == pytest.approx(3e9 / 2.0 / 1e12, rel=1e-12)
    assert figures["tflops"].unit == unit and figures["tflops"].higher_is_better is True
    assert figures["time_us"].value == pytest.approx(2.0e6, rel=1e-12)
    assert figures["time_us"].unit == "us" and figures["time_us"].higher_is_better is False


@pytest.mark.parametrize("device_kind, tflops", [("TPU v5 lite", 197), ("TPU v5e", 197), ("TPU v5p", 459),
                                                 ("TPU v6e", 918), ("TPU v6 lite", 918)])
def test_tpu_peaks_by_generation_in_the_device_kind(device_kind, tflops):
    """Google's published dense bf16 peaks per chip, found in JAX's device_kind."""
    peak = tpu_peak(device_kind, "bf16")
    assert peak["value"] == tflops and peak["unit"] == "TFLOP/s" and peak["kind"] == "datasheet"


def test_an_unknown_tpu_or_dtype_has_no_peak():
    assert tpu_peak("TPU v4", "bf16") is None and tpu_peak("TPU v5p", "int8") is None
