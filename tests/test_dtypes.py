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


def test_every_format_declares_its_output_and_poison():
    from aibench.dtypes import decode, poison

    assert {name: f.output for name, f in FORMATS.items()} == {
        "fp64": "fp64", "fp32": "fp32", "tf32": "fp32", "bf16": "bf16", "fp16": "fp16", "fp8": "bf16",
        "int8": "int32", "int32": "int32"}
    for name, f in FORMATS.items():
        assert f.output in FORMATS
        buf = np.zeros(5, dtype=f.storage)
        poison(buf, name)
        if f.storage.kind in "iu" and f.nan_bits is None:  # an integer format: its most negative value
            assert np.all(buf == np.iinfo(f.storage).min)
        else:  # NaN, as the format's own bits where it is held as raw bits
            assert np.all(np.isnan(decode(buf, name))), name


def test_encode_rounds_and_decode_is_exact():
    from aibench.dtypes import decode, encode

    values = np.array([1.0, -2.0, 3.0, 1.0 + 2.0**-9, 1.0 + 3 * 2.0**-9])
    assert list(decode(encode(values, "bf16"), "bf16")) == [1.0, -2.0, 3.0, 1.0, 1.0 + 2**-7]  # ties to even
    assert encode(values, "fp16").dtype == np.float16 and encode(values, "int8").dtype == np.int8
    with pytest.raises(ValueError, match="on the device"):
        encode(values, "fp8")


@pytest.mark.parametrize("name", ["fp32", "fp64", "bf16", "fp16"])
def test_the_cpp_reduction_takes_the_storage_this_table_declares(name):
    """csrc/collectives checks each array's element type against the dtype it is told: the
    storage FORMATS declares must be what it accepts, and a storage of another size not."""
    from aibench import _core

    storage = FORMATS[name].storage
    a, b = np.zeros(4, dtype=storage), np.zeros(4, dtype=storage)
    _core.reduce_sum(a, b, name)
    other = np.zeros(4, dtype=np.float64 if storage.itemsize != 8 else np.float32)
    with pytest.raises(ValueError, match="cannot hold"):
        _core.reduce_sum(other, other.copy(), name)


def test_the_cpp_bf16_rounding_agrees_with_the_python_codec():
    """The reduction adds bf16 values in fp32 and rounds the sum to bf16 in C++ (scalar,
    AVX2, AVX-512 paths): its bits are those of the Python codec on the same fp32 sum."""
    from aibench import _core

    rng = np.random.default_rng(5)
    a32 = (rng.standard_normal(4099) * 2.0 ** rng.integers(-20, 20, 4099)).astype(np.float32)
    a = bf16_bits(a32)
    zero = np.zeros_like(a)
    halves = bf16_bits(bf16_to_float32(a) / np.float32(3))  # not exactly halvable: rounding happens in the add
    for isa in _core.reduce_isa_paths():
        out = np.empty_like(a)
        _core.reduce_sum(out, halves, "bf16", a=a, isa=isa)
        want = bf16_bits(bf16_to_float32(a) + bf16_to_float32(halves))
        assert np.array_equal(out, want), isa
        _core.reduce_sum(out, zero, "bf16", a=a, isa=isa)
        assert np.array_equal(out, a), isa
