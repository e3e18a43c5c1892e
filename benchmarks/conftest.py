"""Fixtures of the kernel micro-benchmarks: seeded operands in the kernels' storage formats,
and what a saved run records about the kernels (docs/kernel-benchmarks.md)."""

from __future__ import annotations

import numpy as np
import pytest

import kernels
from aibench.dtypes import bf16_bits

SEED = 20240611


def random_values(rng: np.random.Generator, shape: tuple[int, ...], dtype: str, k: int = 1) -> np.ndarray:
    """Uniform in [-1, 1) as fp32, fp64 or bf16 bits (uint16, rounded to nearest even);
    int8: the full range [-128, 127], narrowed to [-8, 8] where a k-term int32 sum of
    128 * 128 products could overflow (so the kernel's int32 result is exact)."""
    if dtype == "int8":
        lo, hi = (-128, 127) if 128 * 128 * k < 2**31 else (-8, 8)
        return rng.integers(lo, hi, shape, dtype=np.int8, endpoint=True)
    x = rng.uniform(-1.0, 1.0, shape)
    if dtype == "fp64":
        return x
    if dtype == "fp32":
        return x.astype(np.float32)
    if dtype == "bf16":
        return bf16_bits(x.astype(np.float32))
    raise ValueError(f"random_values: unknown dtype {dtype!r}")


@pytest.fixture
def rng() -> np.random.Generator:
    """The same operands on every run and every commit: a benchmark compares like with like."""
    return np.random.default_rng(SEED)


@pytest.fixture
def operand(rng):
    """operand(shape, dtype, k=1): a seeded random array in the kernel's input format."""
    return lambda shape, dtype, k=1: random_values(rng, shape, dtype, k)


def pytest_report_header(config):
    d = kernels.describe()
    return [(f"aibench kernels: isa paths {d['isa_paths']}, lowp {d['lowp_paths']}, "
             f"AIBENCH_CPU_ISA={d['isa_cap']}, threads {d['threads']}")]


def pytest_benchmark_update_machine_info(config, machine_info):
    """Saved runs say which paths and cap they ran under (benchmarks/gate.py warns when a
    run's differ from its history's)."""
    machine_info["aibench"] = kernels.describe()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A benchmark whose test failed after timing (its result was wrong) is not saved:
    pytest-benchmark leaves out only benchmarks whose timed function raised."""
    outcome = yield
    report = outcome.get_result()
    fixture = getattr(item, "funcargs", {}).get("benchmark")
    if report.when == "call" and report.failed and fixture is not None:
        fixture.has_error = True
