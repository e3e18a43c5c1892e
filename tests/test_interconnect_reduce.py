"""The collectives' local reduction (_core.reduce_sum) against numpy, on every ISA path."""

import numpy as np
import pytest

from aibench import _core
from aibench.dtypes import bf16_bits, bf16_to_float32

ISAS = _core.reduce_isa_paths()
# Odd lengths exercise the vector body and the scalar tail of every path.
LENGTHS = [0, 1, 3, 15, 16, 17, 31, 33, 64, 1001, 4099]


def _special_fp32(rng, n):
    """Random values of many magnitudes, plus specials spread through the array."""
    x = rng.standard_normal(n).astype(np.float32) * np.float32(2.0) ** rng.integers(-30, 30, n).astype(np.float32)
    specials = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 1e-40, -1e-42, 3.4e38, 65504.0, 65520.0,
                         6e-8, 2.9e-8, 1.0, -1.0], dtype=np.float32)
    if n:
        idx = rng.choice(n, min(n, len(specials)), replace=False)
        x[idx] = specials[: len(idx)]
    return x


def _same(got: np.ndarray, want: np.ndarray) -> bool:
    """Bitwise equal, any NaN matching any NaN (payloads may differ between paths)."""
    if got.dtype == np.uint16 and want.dtype == np.uint16:
        return np.array_equal(got, want)
    g, w = got.astype(np.float64), want.astype(np.float64)
    both_nan = np.isnan(g) & np.isnan(w)
    return bool(np.all(both_nan | (got.view(f"u{got.itemsize}") == want.view(f"u{want.itemsize}"))))


def _nan_aware_bits_equal(got_bits, want_bits, decode):
    g, w = decode(got_bits), decode(want_bits)
    nan = np.isnan(g) & np.isnan(w)
    return bool(np.all(nan | (got_bits == want_bits)))


def test_every_isa_path_is_listed():
    assert ISAS[0] == "scalar" and _core.reduce_best_isa() == ISAS[-1]


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("n", LENGTHS)
@pytest.mark.parametrize("dtype", ["fp32", "fp64"])
def test_fp32_fp64_match_numpy(isa, n, dtype):
    rng = np.random.default_rng(n)
    np_dtype = np.float32 if dtype == "fp32" else np.float64
    a = _special_fp32(rng, n).astype(np_dtype)
    b = _special_fp32(rng, n).astype(np_dtype)
    with np.errstate(all="ignore"):
        want = a + b
    out = np.full(n, np.nan, dtype=np_dtype)
    _core.reduce_sum(out, b, dtype, a=a, isa=isa)
    assert _same(out, want)
    # In place: dst += src.
    dst = a.copy()
    _core.reduce_sum(dst, b, dtype, isa=isa)
    assert _same(dst, want)


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("n", LENGTHS)
def test_fp16_is_fp32_sum_rounded_to_nearest_even(isa, n):
    rng = np.random.default_rng(100 + n)
    # Every fp16 bit pattern is possible, subnormals, infinities and NaNs included.
    a = rng.integers(0, 2**16, n, dtype=np.uint16).view(np.float16)
    b = rng.integers(0, 2**16, n, dtype=np.uint16).view(np.float16)
    with np.errstate(all="ignore"):
        want = (a.astype(np.float32) + b.astype(np.float32)).astype(np.float16)
    out = np.empty(n, dtype=np.float16)
    _core.reduce_sum(out, b, "fp16", a=a, isa=isa)
    assert _nan_aware_bits_equal(out.view(np.uint16), want.view(np.uint16), lambda u: u.view(np.float16))
    # Raw uint16 views are accepted too, in place.
    dst = a.view(np.uint16).copy()
    _core.reduce_sum(dst, b.view(np.uint16), "fp16", isa=isa)
    assert _nan_aware_bits_equal(dst, want.view(np.uint16), lambda u: u.view(np.float16))


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("n", LENGTHS)
def test_bf16_is_fp32_sum_rounded_to_nearest_even(isa, n):
    rng = np.random.default_rng(200 + n)
    a = rng.integers(0, 2**16, n, dtype=np.uint16)
    b = rng.integers(0, 2**16, n, dtype=np.uint16)
    with np.errstate(all="ignore"):
        want = bf16_bits(bf16_to_float32(a) + bf16_to_float32(b))
    out = np.empty(n, dtype=np.uint16)
    _core.reduce_sum(out, b, "bf16", a=a, isa=isa)
    assert _nan_aware_bits_equal(out, want, bf16_to_float32)


@pytest.mark.parametrize("isa", ISAS)
def test_bf16_matches_ml_dtypes(isa):
    ml_dtypes = pytest.importorskip("ml_dtypes")
    rng = np.random.default_rng(7)
    a = rng.standard_normal(999).astype(np.float32).astype(ml_dtypes.bfloat16)
    b = (rng.standard_normal(999) * 1e-3).astype(np.float32).astype(ml_dtypes.bfloat16)
    want = (a.astype(np.float32) + b.astype(np.float32)).astype(ml_dtypes.bfloat16)
    out = np.empty(999, dtype=np.uint16)
    _core.reduce_sum(out, b.view(np.uint16), "bf16", a=a.view(np.uint16), isa=isa)
    assert np.array_equal(out, want.view(np.uint16))


def test_small_integers_are_exact_in_every_dtype():
    """The all-reduce check relies on sums of small integers being exact."""
    ints = np.arange(-256, 257, dtype=np.float32)
    for isa in ISAS:
        for dtype, enc, dec in (("fp16", lambda x: x.astype(np.float16).view(np.uint16), lambda u: u.view(np.float16)),
                                ("bf16", bf16_bits, bf16_to_float32)):
            half = ints / 2
            out = np.empty(ints.size, np.uint16)
            _core.reduce_sum(out, enc(half), dtype, a=enc(half), isa=isa)
            assert np.array_equal(dec(out).astype(np.float32), half * 2)


@pytest.mark.parametrize("bad, match", [
    (lambda: _core.reduce_sum(np.zeros(4, np.float32), np.zeros(5, np.float32), "fp32"), "same number"),
    (lambda: _core.reduce_sum(np.zeros(4, np.float64), np.zeros(4, np.float32), "fp64"), "cannot hold fp64"),
    (lambda: _core.reduce_sum(np.zeros(4, np.float16), np.zeros(4, np.float16), "bf16"), "cannot hold bf16"),
    (lambda: _core.reduce_sum(np.zeros(4, np.float32), np.zeros(4, np.float32), "fp8"), "unknown reduce dtype"),
    (lambda: _core.reduce_sum(np.zeros(4, np.float32), np.zeros(4, np.float32), "fp32", isa="sse9"), "unknown ISA"),
    (lambda: _core.reduce_sum(np.zeros(8, np.float32)[::2], np.zeros(4, np.float32), "fp32"), "C-contiguous"),
    (lambda: (lambda x: _core.reduce_sum(x[1:5], x[0:4], "fp32"))(np.zeros(8, np.float32)), "partly overlap"),
])
def test_bad_arguments_raise_value_error(bad, match):
    with pytest.raises(ValueError, match=match):
        bad()


def test_non_array_raises_type_error_and_readonly_is_refused():
    with pytest.raises(TypeError):
        _core.reduce_sum([1.0, 2.0], np.zeros(2, np.float32), "fp32")
    ro = np.zeros(4, np.float32)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="writeable"):
        _core.reduce_sum(ro, np.zeros(4, np.float32), "fp32")
