"""What every GEMM implementation provides, and how its result is judged."""

from __future__ import annotations

import math

import numpy as np

from ..kernel import KernelRunner

DTYPES = ("fp64", "fp32", "tf32", "bf16", "fp16", "fp8", "int8")

# Unit roundoff (half an ulp at 1.0) per format.
_U = {"fp64": 2.0**-53, "fp32": 2.0**-24, "tf32": 2.0**-11, "bf16": 2.0**-8, "fp16": 2.0**-11,
      "fp8": 2.0**-4, "int8": 0.0, "int32": 0.0}

# dtype -> (input rounding the reference does not see, output format, accumulator format).
# Inputs of bf16/fp16/fp8/int8 cases are stored in that format and decoded exactly for the
# reference; tf32 rounds fp32 inputs inside the tensor cores, which the reference does not.
_PRECISION = {
    "fp64": (None, "fp64", "fp64"),
    "fp32": (None, "fp32", "fp32"),
    "tf32": ("tf32", "fp32", "fp32"),
    "bf16": (None, "bf16", "fp32"),
    # bf16 inputs, fp32 output (the own CPU kernel): fp32 accumulation, one fp32 rounding.
    "bf16-fp32out": (None, "fp32", "fp32"),
    "fp16": (None, "fp16", "fp32"),
    "fp8": (None, "bf16", "fp32"),
    "int8": (None, "int32", "int32"),
}


class GemmRunner(KernelRunner):
    """A prepared GEMM (see KernelRunner), plus what GEMM validation reads back."""

    def sample(self, rows: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(A[rows, :], B[:, cols], C[rows][:, cols]) of the first buffer set, as float64,
        with the inputs exactly as stored (decoded from their format)."""
        raise NotImplementedError

    def validation_dtype(self) -> str:
        raise NotImplementedError


def gemm_tolerance(dtype: str, k: int, ref: np.ndarray) -> float:
    """Largest acceptable error relative to rms(C) on the sampled block.

    Sum of: input rounding the reference did not do (tf32), rounding of the output
    (relative to |c|, so scaled by max|c|/rms(c)), and accumulation error (grows like
    sqrt(k) for random signs). Each term has a safety factor of 4 to 8. A real bug (a
    missed block, a wrong element) lands orders of magnitude above this for fp32/fp64.
    """
    rounded_input, out, acc = _PRECISION[dtype]
    rms = float(np.sqrt(np.mean(ref * ref))) or 1.0
    spread = float(np.max(np.abs(ref))) / rms
    tol = 4.0 * _U[out] * spread + 8.0 * _U[acc] * math.sqrt(k)
    if rounded_input:
        tol += 4.0 * _U[rounded_input]
    return max(tol, 1e-15)


def sampled_error(a_rows: np.ndarray, b_cols: np.ndarray, c_block: np.ndarray) -> tuple[float, np.ndarray]:
    """(max |C - ref| / rms(ref), ref) on the sampled block; non-finite C is infinite error."""
    ref = a_rows @ b_cols
    if not np.all(np.isfinite(c_block)):
        return math.inf, ref
    rms = float(np.sqrt(np.mean(ref * ref))) or 1.0
    return float(np.max(np.abs(c_block - ref))) / rms, ref
