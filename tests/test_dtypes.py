"""The host encodings against an independent implementation (ml_dtypes, which JAX uses):
every bf16 rounding, including ties, NaN, infinities and subnormals, and every fp8 e4m3
bit pattern decoded."""

import numpy as np
import pytest

from aibench.dtypes import FORMATS, bf16_bits, bf16_to_float32, decode

ml_dtypes = pytest.importorskip("ml_dtypes")


def test_bf16_rounding_matches_ml_dtypes():
    rng = np.random.default_rng(3)
    bits = rng.integers(0, 2**32, 200_000, dtype=np.uint64).astype(np.uint32)
    ties = (rng.integers(0, 2**16, 1000, dtype=np.uint32) << 16) | 0x8000  # exactly halfway
    special = np.array([0x7F800000, 0xFF800000, 0x7FC00000, 0x00000001, 0x807FFFFF, 0x7F7FFFFF], dtype=np.uint32)
    x = np.concatenate([bits, ties, special]).view(np.float32)
    ours = bf16_bits(x)
    with np.errstate(invalid="ignore"):  # the NaN inputs
        theirs = x.astype(ml_dtypes.bfloat16).view(np.uint16)
    nan = np.isnan(x)
    assert np.array_equal(ours[~nan], theirs[~nan])
    assert np.all(np.isnan(bf16_to_float32(ours[nan])))


def test_every_fp8_e4m3_pattern_decodes_as_ml_dtypes_does():
    codes = np.arange(256, dtype=np.uint8)
    ours = decode(codes, "fp8")
    theirs = codes.view(ml_dtypes.float8_e4m3fn).astype(np.float64)
    assert np.array_equal(np.isnan(ours), np.isnan(theirs))
    assert np.array_equal(ours[~np.isnan(ours)], theirs[~np.isnan(theirs)])


@pytest.mark.parametrize("name, ml", [("bf16", "bfloat16"), ("fp16", "float16"), ("fp8", "float8_e4m3fn")])
def test_unit_roundoff_of_the_dtype_table(name, ml):
    """Half an ulp at 1.0, as the validation tolerances assume."""
    eps = float(ml_dtypes.finfo(getattr(ml_dtypes, ml, None) or np.dtype(ml)).eps)
    assert FORMATS[name].unit_roundoff == eps / 2
