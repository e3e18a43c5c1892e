"""Element formats on the host: bf16 and fp8 e4m3 held as raw bits in numpy arrays."""

from __future__ import annotations

import functools

import numpy as np


def bf16_bits(x: np.ndarray) -> np.ndarray:
    """float32 -> bf16 bits (uint16), round to nearest even (NaN stays NaN)."""
    u = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32)
    rounded = u + (np.uint32(0x7FFF) + ((u >> np.uint32(16)) & np.uint32(1)))
    out = (rounded >> np.uint32(16)).astype(np.uint16)
    nan = np.isnan(x)
    if nan.any():
        out[nan] = 0x7FC0
    return out


def bf16_to_float32(bits: np.ndarray) -> np.ndarray:
    return (bits.astype(np.uint32) << np.uint32(16)).view(np.float32)


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
