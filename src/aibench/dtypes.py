"""Element formats: the one table of what aibench knows about each dtype (FORMATS): how
the host holds it, the format a product of it is written in, what a poisoned output of it
holds; and the host codec (bf16 and fp8 e4m3 held as raw bits in numpy or cupy arrays).
The C++ and CUDA sources keep their own constants (csrc/common/bf16.hpp and the ops'
dtype checks); tests/test_dtypes.py checks that they agree with this table."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Format:
    name: str
    storage: np.dtype  # how the host holds it (bf16: raw bits in uint16; fp8: in uint8; tf32: float32)
    unit_roundoff: float  # half an ulp at 1.0 (0 for integers)
    exact_int: int  # every integer of magnitude <= exact_int is representable
    output: str  # the format a product (GEMM, attention on the GPU) writes: fp8 -> bf16, int8 -> int32
    nan_bits: int | None = None  # the NaN pattern of a format held as raw bits

    @property
    def itemsize(self) -> int:
        return self.storage.itemsize

    @property
    def poison(self) -> float | int:
        """What a poisoned output holds, so that an element a kernel never writes fails
        validation: NaN (its bits for a raw-bit format), the most negative integer for an
        integer format (no NaN there; no product of the validated inputs reaches it)."""
        if self.nan_bits is not None:
            return self.nan_bits
        if self.storage.kind in "iu":
            return int(np.iinfo(self.storage).min)
        return float("nan")


FORMATS = {
    "fp64": Format("fp64", np.dtype(np.float64), 2.0**-53, 2**53, "fp64"),
    "fp32": Format("fp32", np.dtype(np.float32), 2.0**-24, 2**24, "fp32"),
    "tf32": Format("tf32", np.dtype(np.float32), 2.0**-11, 2**11, "fp32"),  # fp32 storage, 10-bit mantissa in the math
    "bf16": Format("bf16", np.dtype(np.uint16), 2.0**-8, 2**8, "bf16", nan_bits=0x7FC0),
    "fp16": Format("fp16", np.dtype(np.float16), 2.0**-11, 2**11, "fp16"),
    "fp8": Format("fp8", np.dtype(np.uint8), 2.0**-4, 2**4, "bf16", nan_bits=0x7F),  # e4m3
    "int8": Format("int8", np.dtype(np.int8), 0.0, 2**7 - 1, "int32"),
    "int32": Format("int32", np.dtype(np.int32), 0.0, 2**31 - 1, "int32"),
}


def rate_unit(dtype: str) -> str:
    """The unit of a compute rate in `dtype`: integer operations are not floating-point
    ones (int8 in TOPS)."""
    return "TOPS" if dtype == "int8" else "TFLOP/s"


def poison(arr, fmt: str) -> None:
    """Fill `arr` (a numpy or cupy buffer of `fmt`, seen as its storage) with the format's poison."""
    arr.view(FORMATS[fmt].storage).fill(FORMATS[fmt].poison)


def bf16_bits(x: np.ndarray) -> np.ndarray:
    """float32 -> bf16 bits (uint16), round to nearest even (NaN stays NaN)."""
    u = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32)
    rounded = u + (np.uint32(0x7FFF) + ((u >> np.uint32(16)) & np.uint32(1)))
    out = (rounded >> np.uint32(16)).astype(np.uint16)
    nan = np.isnan(x)
    if nan.any():
        out[nan] = FORMATS["bf16"].nan_bits
    return out


def bf16_to_float32(bits):
    """bf16 bits (uint16, numpy or cupy) -> float32, exact."""
    return (bits.astype(np.uint32) << np.uint32(16)).view(np.float32)


def encode(values: np.ndarray, fmt: str) -> np.ndarray:
    """float values -> the storage of `fmt` (bf16: rounded to nearest even, as bits).
    fp8 has no encoder here: its inputs are made on the device (csrc/cuda/fill.cu)."""
    if fmt == "bf16":
        return bf16_bits(np.asarray(values, dtype=np.float32))
    if fmt == "fp8":
        raise ValueError("fp8 values are encoded on the device only")
    return np.asarray(values).astype(FORMATS[fmt].storage)


@functools.lru_cache(maxsize=1)
def _fp8_e4m3_table() -> np.ndarray:
    """float64 value of each of the 256 fp8 e4m3 (fn) bit patterns."""
    table = np.empty(256, dtype=np.float64)
    for bits in range(256):
        sign = -1.0 if bits & 0x80 else 1.0
        exp, man = (bits >> 3) & 0xF, bits & 0x7
        if exp == 0xF and man == 0x7:
            table[bits] = np.nan
        elif exp == 0:
            table[bits] = sign * (man / 8.0) * 2.0**-6
        else:
            table[bits] = sign * (1.0 + man / 8.0) * 2.0 ** (exp - 7)
    return table


def decode(host: np.ndarray, fmt: str) -> np.ndarray:
    """Values in format `fmt` (bf16/fp8 as raw bits, others native) -> float64."""
    if fmt == "bf16":
        return bf16_to_float32(host).astype(np.float64)
    if fmt == "fp8":
        return _fp8_e4m3_table()[host.astype(np.uint8)]
    return host.astype(np.float64)
