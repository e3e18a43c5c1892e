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
            (1000, 513, 129)]


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


def test_time_gemm_rotates_buffers_and_computes_each():
    rng = np.random.default_rng(1)
    sets = [(rng.standard_normal((33, 17)), rng.standard_normal((17, 29))) for _ in range(3)]
    a = [s[0] for s in sets]
    b = [s[1] for s in sets]
    c = [np.full((33, 29), np.nan) for _ in sets]
    elapsed = _core.time_gemm(a, b, c, 3)
    assert elapsed > 0
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
