"""What every GEMM implementation provides, and how its result is judged."""

from __future__ import annotations

import math

import numpy as np

from ...dtypes import FORMATS
from ...results import FAILED, PASSED, Validation
from ..kernel import KernelRunner, scale_error

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
        """Two checks of the output: the float64 reference on sampled rows and columns
        (the error's size, relative to rms(C)), then every element through Freivalds'
        projections (full_output_check)."""
        rng = np.random.default_rng(self.seed + 7)
        rows = sample_indices(rng, self.params["m"])
        cols = sample_indices(rng, self.params["n"])
        a_rows, b_cols, c_block = self.sample(rows, cols)
        error, ref = sampled_error(a_rows, b_cols, c_block)
        tol = gemm_tolerance(self.validation_dtype(), self.params["k"], ref)
        if error > tol:
            return Validation(status=FAILED, max_rel_error=error, tolerance=tol,
                              reason=f"wrong result: max error {error:.3g} (relative to the rms of C) exceeds "
                                     f"tolerance {tol:.3g}")
        _, out, acc = _PRECISION[self.validation_dtype()]
        sums = (float(((c_block - ref) * ref).sum()), float((ref * ref).sum()), float((ref**4).sum()))
        wrong = scale_error(sums, ref.size, FORMATS[out].unit_roundoff,
                            8 * FORMATS[acc].unit_roundoff * math.sqrt(self.params["k"]))
        if wrong:
            return Validation(status=FAILED, max_rel_error=error, tolerance=tol, reason=f"wrong result: {wrong}")
        wrong = full_output_check(self.rows, self.params["m"], self.params["n"], self.params["k"],
                                  self.validation_dtype(), self.seed)
        if wrong:
            return Validation(status=FAILED, max_rel_error=error, tolerance=tol, reason=f"wrong result: {wrong}")
        return Validation(status=PASSED, max_rel_error=error, tolerance=tol,
                          reason=f"sampled rows x columns within tolerance; every element through "
                                 f"{FREIVALDS_VECTORS} Freivalds projections")

    def rows(self, which: str, start: int, stop: int) -> np.ndarray:
        """Rows start:stop of A (m x k), B (k x n) or C (m x n) of the first buffer set, as
        float64, exactly as stored (decoded from their format)."""
        raise NotImplementedError

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


# Freivalds' check of every element at O(n^2): C·x against A·(B·x) in float64 for random
# sign vectors x. Row i's residual r_i = sum_j e_ij x_j sums the row's rounding errors
# e_ij with random signs, so (Hoeffding) |r_i| <= z·sqrt(sum_j b_ij^2) but with
# probability 2·exp(-z^2/2) (5e-11 at z = 7) when every |e_ij| <= b_ij, the per-element
# bound gemm_tolerance uses (output rounding 4·u_out·|c_ij| plus accumulation
# 8·u_acc·sqrt(k)·rms(C) and unseen input rounding 4·u_in·rms(C)). An element wrong by
# more than twice that row threshold is caught by every vector, except with that
# probability; smaller errors are caught with a probability growing with their size (and
# the sampled check sees the rows and columns it samples). A whole-output scale error
# shows in the projection of r on C·x, whose noise shrinks with sqrt(m); it is allowed
# the bias of a truncating rounding (2·u_in + u_out): a 1% scale is caught in every
# format (a bf16 output allows 0.4%).
FREIVALDS_VECTORS = 2
FREIVALDS_Z = 7.0
_CHUNK_VALUES = 1 << 20  # values converted to float64 at a time


def _row_blocks(rows: int, width: int):
    step = max(1, _CHUNK_VALUES // max(1, width))
    for start in range(0, rows, step):
        yield start, min(rows, start + step)


def freivalds_temp_bytes(m: int, n: int, k: int) -> int:
    """Peak bytes full_output_check holds: one row block decoded to float64 with its bf16
    steps (uint32 and float32: 8 B per value) and |block| (8 B), the block times x, and
    the vectors (x, B·x, A·B·x, C·x: two columns each; row sums of C^2 and |C|)."""
    block = min(_CHUNK_VALUES + max(m, n, k), max(m * k, k * n, m * n))
    return block * (8 + 8 + 8) + 16 * (n + k + 2 * m) + 16 * m + 2 * 16 * max(m, k)


def full_output_check(rows, m: int, n: int, k: int, dtype: str, seed: int) -> str | None:
    """None when C = A·B up to rounding everywhere, else why not. `rows(which, start,
    stop)` gives float64 row blocks of "a", "b" and "c" (GemmRunner.rows)."""
    rng = np.random.default_rng(seed + 99)
    x = rng.choice([-1.0, 1.0], size=(n, FREIVALDS_VECTORS))
    bx = np.empty((k, FREIVALDS_VECTORS))
    for s, e in _row_blocks(k, n):
        bx[s:e] = rows("b", s, e) @ x
    abx = np.empty((m, FREIVALDS_VECTORS))
    for s, e in _row_blocks(m, k):
        abx[s:e] = rows("a", s, e) @ bx
    cx = np.empty((m, FREIVALDS_VECTORS))
    sq, l1 = np.empty(m), np.empty(m)
    for s, e in _row_blocks(m, n):
        block = rows("c", s, e)
        if not np.all(np.isfinite(block)):
            bad = s + int(np.argmax(~np.all(np.isfinite(block), axis=1)))
            return f"C has a non-finite element (row {bad})"
        cx[s:e] = block @ x
        sq[s:e] = np.einsum("ij,ij->i", block, block)
        l1[s:e] = np.abs(block).sum(axis=1)
    rounded_input, out, acc = _PRECISION[dtype]
    u_out, u_acc = FORMATS[out].unit_roundoff, FORMATS[acc].unit_roundoff
    u_in = FORMATS[rounded_input].unit_roundoff if rounded_input else 0.0
    rms = math.sqrt(sq.sum() / max(1, m * n))
    spread = (8.0 * u_acc * math.sqrt(k) + 4.0 * u_in) * rms
    # sqrt(sum_j (4 u_out |c_ij| + spread)^2), plus float64's own error in A·(B·x)
    sigma = np.sqrt(16 * u_out**2 * sq + 8 * u_out * spread * l1 + n * spread**2)
    sigma += 1e-13 * (np.abs(abx).max(axis=1) + math.sqrt(n * k) * rms)
    if u_out == 0 and u_acc == 0:
        sigma = np.full(m, 0.5 / FREIVALDS_Z)  # integers: the check is exact
    residual = cx - abx
    over = np.abs(residual) > FREIVALDS_Z * sigma[:, None]
    if over.any():
        bad_rows = int(over.any(axis=1).sum())
        i = int(np.argmax((np.abs(residual) / (FREIVALDS_Z * sigma[:, None])).max(axis=1)))
        return (f"C·x differs from A·(B·x) beyond rounding on {bad_rows} of {m} rows (worst: row {i}, "
                f"{np.abs(residual[i]).max():.3g} against a bound of {FREIVALDS_Z * sigma[i]:.3g})")
    for v in range(FREIVALDS_VECTORS):
        w = cx[:, v]
        norm = float(w @ w)
        if norm > 0:
            scale = float(residual[:, v] @ w) / norm
            # plus what a rounding mode that is not to-nearest may shift every element by
            # (truncating conversions of the inputs or the output)
            bound = FREIVALDS_Z * math.sqrt(float((sigma * sigma) @ (w * w))) / norm + 2 * u_in + u_out
            if abs(scale) > bound:
                return f"C is A·B scaled by {1 + scale:.5f} (a whole-output error above rounding: {bound:.2g})"
    return None
