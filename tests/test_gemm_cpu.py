"""The own CPU kernel against a float64 reference, on every ISA path this CPU has."""

import numpy as np
import pytest

from aibench import _core

PATHS = list(_core.isa_paths())
TOL = {np.float32: 2e-5, np.float64: 1e-12}


def _odd_shapes(isa, dtype):
    b = _core.gemm_blocking(isa, dtype)
    mr, nr, kc, mc, nc = b["mr"], b["nr"], b["kc"], b["mc"], b["nc"]
    return [(1, 1, 1), (7, 7, 7), (63, 63, 63), (1, 1000, 7), (1000, 1, 63), (63, 1000, 1),
            (mr + 1, nr + 1, kc + 1), (mc + 3, nr * 2 + 5, kc * 2 + 3), (mr * 3 - 1, nc + 7, 17),
            (1000, 513, 129),
            # GEMV (one row: column split, and k split where n is short; one column), the
            # column split for few rows (m <= mc), and the row split just past it
            (1, 4099, 300), (1, 37, 3000), (1, 5, 1), (4099, 1, 300), (2, 3000, 257),
            (16, 700, 1030), (mc, 20 * nr + 3, kc + 5), (mc + 1, 20 * nr + 3, 9)]


@pytest.mark.parametrize("isa", PATHS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_own_gemm_matches_float64_reference_on_odd_shapes(isa, dtype):
    rng = np.random.default_rng(0)
    name = "fp32" if dtype is np.float32 else "fp64"
    for m, n, k in _odd_shapes(isa, name):
        a = rng.uniform(-1, 1, (m, k)).astype(dtype)
        b = rng.uniform(-1, 1, (k, n)).astype(dtype)
        c = np.full((m, n), np.nan, dtype=dtype)
        _core.gemm(a, b, c, isa)
        ref = a.astype(np.float64) @ b.astype(np.float64)
        scale = np.abs(a).astype(np.float64) @ np.abs(b).astype(np.float64)
        err = np.max(np.abs(c - ref) / scale)
        assert err < TOL[dtype], f"{isa} {name} {m}x{n}x{k}: error {err}"


FEW_COLUMNS = 32  # gemm.hpp kFewColumns: products of 2..32 columns take the dot_cols kernel


@pytest.mark.parametrize("isa", PATHS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_few_column_products_match_the_reference(isa, dtype):
    # Every column count of the few-column kernel and just past it, rows off its groups of
    # four (and fewer rows than one group), k off the vector width (and shorter than one),
    # thread counts that split the rows unevenly.
    rng = np.random.default_rng(7)
    name = "fp32" if dtype is np.float32 else "fp64"
    for n in [*range(2, 10), 15, 16, 17, FEW_COLUMNS - 1, FEW_COLUMNS, FEW_COLUMNS + 1]:
        for m, k, threads in [(2, 3, 0), (3, 1, 1), (5, 17, 2), (13, 300, 3), (4099, 33, 0)]:
            a = rng.uniform(-1, 1, (m, k)).astype(dtype)
            b = rng.uniform(-1, 1, (k, n)).astype(dtype)
            c = np.full((m, n), np.nan, dtype=dtype)
            _core.gemm(a, b, c, isa, threads)
            ref = a.astype(np.float64) @ b.astype(np.float64)
            scale = np.abs(a).astype(np.float64) @ np.abs(b).astype(np.float64)
            err = np.max(np.abs(c - ref) / scale)
            assert err < TOL[dtype], f"{isa} {name} {m}x{n}x{k} threads={threads}: error {err}"


def test_gemm_op_rotates_buffers_and_computes_each():
    rng = np.random.default_rng(1)
    sets = [(rng.standard_normal((33, 17)), rng.standard_normal((17, 29))) for _ in range(3)]
    a = [s[0] for s in sets]
    b = [s[1] for s in sets]
    c = [np.full((33, 29), np.nan) for _ in sets]
    op = _core.Gemm(a, b, c, "fp64")
    assert op.time(3) > 0
    assert op.describe["isa"] == _core.best_isa() and op.describe["buffer_sets"] == 3
    for ai, bi, ci in zip(a, b, c):
        np.testing.assert_allclose(ci, ai @ bi, rtol=1e-10, atol=1e-12)


def test_bad_arguments_raise_value_error_not_crash():
    a = np.zeros((4, 5), np.float32)
    with pytest.raises(ValueError):
        _core.gemm(a, np.zeros((6, 4), np.float32), np.zeros((4, 4), np.float32))  # k mismatch
    with pytest.raises(ValueError):
        _core.gemm(a, np.zeros((5, 4), np.float64), np.zeros((4, 4), np.float32))  # mixed dtypes
    with pytest.raises(ValueError):
        _core.gemm(a, np.zeros((5, 4), np.float32), np.zeros((4, 4), np.float32)[:, ::2])  # not contiguous
    with pytest.raises(ValueError):
        _core.gemm(a, np.zeros((5, 4), np.float32), np.zeros((4, 4), np.float32), "no-such-isa")


def test_clock_measurement_is_plausible():
    ghz = _core.measure_clock_ghz(0.05)
    assert 0.3 < ghz < 7.0


# ---- Low-precision paths: bf16 (AVX512_BF16 or widened to fp32) and int8 (AVX512_VNNI or
# widened to int16 for VPMADDWD); every path this CPU has, the widening ones everywhere ----

LOWP = [(dtype, path) for dtype in ("bf16", "int8") for path in _core.lowp_paths(dtype)]
_GROUP = {"bf16": 2, "int8": 4}  # k per 32-bit lane of the dot-product instructions


def _lowp_odd_shapes(path, dtype):
    b = _core.gemm_blocking(path, dtype)
    mr, nr, kc, mc, nc = b["mr"], b["nr"], b["kc"], b["mc"], b["nc"]
    assert kc % _GROUP[dtype] == 0  # only the last k block may have a partial group
    return [(1, 1, 1), (7, 7, 7), (63, 63, 63), (1, 1000, 7), (1000, 1, 63), (63, 1000, 1),
            (5, 9, 3), (13, 70, 5), (3, 3, 6), (mr, nr, kc), (mr + 1, nr + 1, kc + 1),
            (mr - 1, nr - 1, kc - 1), (mr, nr, kc + 2), (mc + 3, nr * 2 + 5, kc * 2 + 3),
            (mr * 3 - 1, nc + 7, 17), (1000, 513, 129)]


@pytest.mark.parametrize("dtype", ["bf16", "int8"])
def test_lowp_paths_are_the_native_path_and_every_isa_path_widening(dtype):
    paths = _core.lowp_paths(dtype)
    widening = list(reversed(_core.isa_paths()))  # best first, down to scalar
    native = [p for p in paths if _core.is_native_lowp_path(p)]
    assert [p for p in paths if p not in native] == widening
    level = {"bf16": "avx512_bf16", "int8": "avx512_vnni"}[dtype]  # the level of its instructions
    assert native == ([level] if level in _core.cpu_isa_levels() else [])
    if native and dtype == "bf16":
        # VDPBF16PS leads only where it outruns the fp32 FMA that the widening path uses.
        rate = _core.bf16_dot_over_fma()
        assert rate["dot_gflops"] > 0 and rate["fma_gflops"] > 0
        first = rate["ratio"] >= rate["native_first_from"]
        assert paths.index(native[0]) == (0 if first else 1), rate
    elif native:
        assert paths[0] == native[0]  # VPDPBUSD: 4 products per lane, always ahead
    assert _core.gemm_blocking("auto", dtype) == _core.gemm_blocking(paths[0], dtype)


@pytest.mark.parametrize("path", _core.lowp_paths("bf16"))
def test_own_bf16_gemm_matches_float64_reference_on_odd_shapes(path):
    from aibench.dtypes import bf16_bits, bf16_to_float32

    rng = np.random.default_rng(2)
    for m, n, k in _lowp_odd_shapes(path, "bf16"):
        a = bf16_bits(rng.uniform(-1, 1, (m, k)).astype(np.float32))
        b = bf16_bits(rng.uniform(-1, 1, (k, n)).astype(np.float32))
        a64, b64 = bf16_to_float32(a).astype(np.float64), bf16_to_float32(b).astype(np.float64)
        ref = a64 @ b64
        scale = np.abs(a64) @ np.abs(b64)
        c = np.full((m, n), np.nan, dtype=np.float32)  # fp32 output
        _core.gemm(a, b, c, path)
        err = np.max(np.abs(c - ref) / scale)
        assert err < 2e-5, f"{path} bf16 -> fp32 {m}x{n}x{k}: error {err}"
        # bf16 output: the same fp32 sum over all of k, rounded once to nearest even.
        c16 = np.full((m, n), 0x7FC0, dtype=np.uint16)
        _core.gemm(a, b, c16, path)
        assert np.array_equal(c16, bf16_bits(c)), f"{path} bf16 -> bf16 {m}x{n}x{k}: not RNE of the fp32 sum"


@pytest.mark.parametrize("path", _core.lowp_paths("int8"))
def test_own_int8_gemm_is_exact_on_odd_shapes(path):
    rng = np.random.default_rng(3)
    for m, n, k in _lowp_odd_shapes(path, "int8"):
        # The full s8 range: -128 is where the u8 = a + 128 packing and its correction bite.
        a = rng.integers(-128, 127, (m, k), dtype=np.int8, endpoint=True)
        b = rng.integers(-128, 127, (k, n), dtype=np.int8, endpoint=True)
        c = np.full((m, n), np.iinfo(np.int32).min, dtype=np.int32)
        _core.gemm(a, b, c, path)
        ref = a.astype(np.int64) @ b.astype(np.int64)
        assert np.array_equal(c, ref), f"{path} int8 {m}x{n}x{k}: {np.count_nonzero(c != ref)} wrong elements"


@pytest.mark.parametrize("path", _core.lowp_paths("int8"))
def test_own_int8_gemm_extremes_are_exact(path):
    # Every product at its extreme: (-128)(-128) and (-128)(127), summed past one k block.
    kc = _core.gemm_blocking(path, "int8")["kc"]
    m, n, k = 13, 70, 2 * kc + 1
    a = np.full((m, k), -128, dtype=np.int8)
    b = np.where(np.arange(n) % 2 == 0, -128, 127).astype(np.int8)[None, :].repeat(k, axis=0)
    c = np.zeros((m, n), dtype=np.int32)
    _core.gemm(a, b, c, path)
    np.testing.assert_array_equal(c, a.astype(np.int64) @ b.astype(np.int64))


def test_gemm_op_runs_lowp_and_rejects_bad_arguments():
    from aibench.dtypes import bf16_bits

    rng = np.random.default_rng(4)
    a = [bf16_bits(rng.uniform(-1, 1, (33, 17)).astype(np.float32)) for _ in range(2)]
    b = [bf16_bits(rng.uniform(-1, 1, (17, 29)).astype(np.float32)) for _ in range(2)]
    c = [np.full((33, 29), np.nan, np.float32) for _ in range(2)]
    assert _core.Gemm(a, b, c, "bf16").time(2) > 0
    assert np.all(np.isfinite(c[0])) and np.all(np.isfinite(c[1]))
    ai = [rng.integers(-128, 128, (9, 11), dtype=np.int8)]
    bi = [rng.integers(-128, 128, (11, 5), dtype=np.int8)]
    ci = [np.zeros((9, 5), np.int32)]
    op = _core.Gemm(ai, bi, ci, "int8", _core.lowp_paths("int8")[0])
    assert op.describe["isa"] == _core.lowp_paths("int8")[0]
    assert op.time(1) > 0
    np.testing.assert_array_equal(ci[0], ai[0].astype(np.int64) @ bi[0].astype(np.int64))
    with pytest.raises(ValueError):  # not a path
        _core.gemm(a[0], b[0], c[0], "avx3")
    with pytest.raises(ValueError):  # the dtype named is not the arrays'
        _core.Gemm(a, b, c, "fp32")
    with pytest.raises(ValueError):
        _core.Gemm([], [], [], "fp32")
    with pytest.raises(ValueError):
        _core.Gemm(ai, bi, ci, "int8").time(0)
    with pytest.raises(ValueError):  # int8 -> int32 only
        _core.gemm(ai[0], bi[0], np.zeros((9, 5), np.int64))
    with pytest.raises(ValueError):  # bf16 bits with an int8 operand
        _core.gemm(a[0], ai[0][:17, :5].copy(), np.zeros((33, 5), np.float32))
    with pytest.raises(ValueError):
        _core.lowp_paths("fp16")
    with pytest.raises(ValueError):  # the int8 native path has no bf16 kernel
        _core.gemm(a[0], b[0], c[0], "avx512_vnni")


# ---- Suite level: bf16 and int8 cases through the command line ----

@pytest.mark.parametrize("dtype", ["bf16", "int8"])
def test_suite_runs_lowp_cases_own_validated_blas_skipped(tmp_path, dtype):
    import json

    from aibench.cli import main

    out = tmp_path / "run.json"
    code = main(["run", "--suite", "gemm", "--param", "m=37,64", "--param", "n=45", "--param", "k=29",
                 "--param", f"dtype={dtype}", "--output", str(out), "--time-budget", "0.05", "--no-asv"])
    cases = json.loads(out.read_text())["cases"]
    # 0 when something was measured; 1 when every case was skipped (no own path on this
    # CPU, no torch): a run that measured nothing is not a pass.
    assert code == (0 if any(c["status"] == "passed" for c in cases) else 1)
    by_impl = {}
    for c in cases:
        by_impl.setdefault(c["impl"], []).append(c)
    for c in by_impl["blas"]:
        assert c["status"] == "skipped" and f"no {dtype} BLAS" in c["validation"]["reason"]
    for c in by_impl["aibench"]:
        assert c["status"] == "passed" and c["validation"]["status"] == "passed"
        assert c["metrics"]["tflops"]["value"] > 0 and c["percent_of_peak"] > 0
        assert c["impl_detail"]["isa"] == _core.lowp_paths(dtype)[0]
        assert c["peak"]["value"] > 0 and c["percent_of_peak"] <= 100
        if dtype == "int8":
            assert c["validation"]["max_rel_error"] == 0.0  # exact
    for c in by_impl.get("torch", []):
        assert c["status"] in ("passed", "skipped")
        if c["status"] == "skipped":
            assert c["validation"]["reason"]


def test_suite_catches_a_wrong_int8_element(tmp_path, monkeypatch):
    import json

    from aibench.cli import main
    from aibench.suites.gemm import cpu

    def off_by_one(self):  # after the last timed call, before validation
        self.c[0][-1, -1] += 1  # int8 is exact: one unit off must fail

    monkeypatch.setattr(cpu.OwnKernelRunner, "collect_timed_output", off_by_one)
    out = tmp_path / "run.json"
    code = main(["run", "--param", "m=40", "--param", "n=24", "--param", "k=36", "--param", "dtype=int8",
                 "--impl", "aibench", "--output", str(out), "--time-budget", "0.05", "--no-asv"])
    assert code == 1
    (case,) = json.loads(out.read_text())["cases"]
    assert case["status"] == "failed" and "wrong result" in case["error"]


def test_kernels_keep_every_core_when_torch_lowers_openmp_threads():
    """torch.set_num_threads(1) (what torch does by itself under an MPI launcher) lowers
    the OpenMP default of the whole process; aibench's kernels must still use every core."""
    import os
    import subprocess
    import sys

    torch = pytest.importorskip("torch")
    del torch
    code = ("import os, torch; from aibench import _core; torch.set_num_threads(1); "
            "print(_core.default_threads(), len(os.sched_getaffinity(0)))")
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    threads, cores = map(int, out.stdout.split())
    assert threads == cores


def test_headline_figures_are_bounded_by_the_peak():
    """A factor-of-`number` slip in the time per call would put TFLOP/s far above the
    CPU's peak: every impl's figure stays at or below the peak (plus 15% for the clock
    measurement and the noise), and agrees with 2mnk over the median time."""
    from aibench.harness import SamplingPolicy
    from aibench.suites.base import RunContext
    from aibench.suites.gemm import GemmSuite
    from aibench.targets import parse_target

    suite = GemmSuite()
    # Samples of at least 50 ms: several calls per sample even on a loaded machine. The
    # calls per sample come from the fastest warm-up call: half a second of warm-up, so
    # that one call preempted for tens of ms (a loaded machine) cannot set them to 1.
    ctx = RunContext(target=parse_target("cpu"),
                     policy=SamplingPolicy(budget_s=1.0, min_sample_s=0.05, warmup_s=0.5))
    for dtype in ("fp32", "fp64"):
        params = {"m": 256, "n": 256, "k": 256, "dtype": dtype}
        for impl in suite.impls():
            if "cpu" not in impl.target_kinds or impl.unavailable_reason(ctx.target):
                continue
            r, = suite.run_case(params, impl, ctx)
            assert r.status == "passed", (impl.name, r.error)
            assert r.stats.number > 1  # the figure is per call of a sample of several calls
            assert r.metrics["tflops"].value == pytest.approx(2 * 256**3 / r.stats.summary.median / 1e12)
            assert 0 < r.percent_of_peak <= 115, (impl.name, dtype, r.percent_of_peak)
