"""What every GEMM implementation provides, and how its result is judged."""

from __future__ import annotations

import math

import numpy as np

from ...dtypes import FORMATS
from ...results import FAILED, PASSED, Validation
from ..kernel import KernelRunner

DTYPES = ("fp64", "fp32", "tf32", "bf16", "fp16", "fp8", "int8")

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

    def flops(self) -> float:
        return 2.0 * self.params["m"] * self.params["n"] * self.params["k"]

    def validate(self) -> Validation:
        """Float64 reference on sampled rows and columns of the output just computed."""
        rng = np.random.default_rng(self.seed + 7)
        rows = sample_indices(rng, self.params["m"])
        cols = sample_indices(rng, self.params["n"])
        a_rows, b_cols, c_block = self.sample(rows, cols)
        error, ref = sampled_error(a_rows, b_cols, c_block)
        tol = gemm_tolerance(self.validation_dtype(), self.params["k"], ref)
        if error <= tol:
            return Validation(status=PASSED, max_rel_error=error, tolerance=tol)
        return Validation(status=FAILED, max_rel_error=error, tolerance=tol,
                          reason=f"wrong result: max error {error:.3g} (relative to the rms of C) exceeds "
                                 f"tolerance {tol:.3g}")

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
    tol = 4.0 * FORMATS[out].unit_roundoff * spread + 8.0 * FORMATS[acc].unit_roundoff * math.sqrt(k)
    if rounded_input:
        tol += 4.0 * FORMATS[rounded_input].unit_roundoff
    return max(tol, 1e-15)


def sampled_error(a_rows: np.ndarray, b_cols: np.ndarray, c_block: np.ndarray) -> tuple[float, np.ndarray]:
    """(max |C - ref| / rms(ref), ref) on the sampled block; non-finite C is infinite error."""
    ref = a_rows @ b_cols
    if not np.all(np.isfinite(c_block)):
        return math.inf, ref
    rms = float(np.sqrt(np.mean(ref * ref))) or 1.0
    return float(np.max(np.abs(c_block - ref))) / rms, ref


def sample_indices(rng: np.random.Generator, size: int, count: int = 24) -> np.ndarray:
    """First, last and random interior indices: edges are where blocked kernels go wrong."""
    if size <= count:
        return np.arange(size)
    picks = {0, size - 1, size // 2}
    picks.update(rng.choice(size, count - len(picks), replace=False).tolist())
    return np.array(sorted(picks))
