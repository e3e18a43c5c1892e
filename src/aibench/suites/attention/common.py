"""What every attention implementation provides, the float64 reference, and FLOPs."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ...dtypes import FORMATS
from ...results import FAILED, PASSED, Validation
from ..kernel import KernelRunner, scale_error



# Multiply-adds of a float64 reference of every query row of every head (B·H·Sq·Sk·D)
# up to which validation checks the whole output: a few seconds of float64 BLAS on 2 cores.
FULL_CHECK_WORK = 1 << 37
VALIDATION_ROWS = 64  # query rows per head when sampling, and per reference block


class AttentionRunner(KernelRunner):
    def flops(self) -> float:
        return attention_flops(self.params)

    def validate(self) -> Validation:
        """The float64 reference against every head: every query row when the whole
        reference is cheap (FULL_CHECK_WORK), else VALIDATION_ROWS rows per head (first,
        last and random, so every KV group of a grouped-query case is checked); and every
        element of every head within the convex hull of its V (a softmax-weighted mean)."""
        p = self.params
        rng = np.random.default_rng(self.seed + 11)
        scale = default_scale(p["head_dim"])
        full = p["batch"] * p["heads"] * p["seqlen"] * p["kv_seqlen"] * p["head_dim"] <= FULL_CHECK_WORK
        worst, sumsq, count, peak, outside = 0.0, 0.0, 0, 0.0, None
        cross = quad = 0.0  # sum (o - ref)·ref and sum ref^4, for the scale check
        for b in range(p["batch"]):
            for h in range(p["heads"]):
                q, k, v, o = self.head(b, h)
                if not np.all(np.isfinite(o)):
                    return Validation(status=FAILED, reason=f"wrong result: a non-finite output in head ({b}, {h})")
                hull = 4 * FORMATS[p["dtype"]].unit_roundoff * float(np.max(np.abs(v))) + 1e-6
                if outside is None and (np.any(o < v.min(axis=0) - hull) or np.any(o > v.max(axis=0) + hull)):
                    outside = (b, h)
                rows = np.arange(p["seqlen"]) if full else sampled_rows(rng, p["seqlen"], VALIDATION_ROWS)
                for start in range(0, len(rows), VALIDATION_ROWS):
                    block = rows[start:start + VALIDATION_ROWS]
                    ref = reference_rows(q, k, v, block, p["causal"], scale)
                    worst = max(worst, float(np.max(np.abs(o[block] - ref))))
                    sumsq, count = sumsq + float(np.sum(ref * ref)), count + ref.size
                    cross, quad = cross + float(np.sum((o[block] - ref) * ref)), quad + float(np.sum(ref**4))
                    peak = max(peak, float(np.max(np.abs(ref))))
        rms = math.sqrt(sumsq / max(1, count)) or 1.0
        error, tol = worst / rms, _tolerance(p["dtype"], peak / rms, p["kv_seqlen"])
        checked = "every row of every head" if full else f"{VALIDATION_ROWS} rows of every head"
        if error > tol:
            return Validation(status=FAILED, max_rel_error=error, tolerance=tol,
                              reason=f"wrong result: max error {error:.3g} (relative to the rms of O, over "
                                     f"{checked}) exceeds tolerance {tol:.3g}")
        scaled = scale_error((cross, sumsq, quad), count, FORMATS[p["dtype"]].unit_roundoff, 1e-5)
        if scaled:
            return Validation(status=FAILED, max_rel_error=error, tolerance=tol, reason=f"wrong result: {scaled}")
        if outside is not None:
            return Validation(status=FAILED, max_rel_error=error, tolerance=tol,
                              reason=f"wrong result: head {outside} has an output outside the range of its V "
                                     "(a softmax-weighted mean cannot leave it)")
        return Validation(status=PASSED, max_rel_error=error, tolerance=tol,
                          reason=f"float64 reference on {checked}; every element within its V's range")

    def head(self, b: int, h: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(q[b, h], k[b, h_kv], v[b, h_kv], o[b, h]) of the first buffer set as float64,
        inputs exactly as stored: (Sq, D), (Sk, D), (Sk, D), (Sq, D)."""
        raise NotImplementedError


def attention_flops(p: dict[str, Any]) -> float:
    """4·B·H·D per visible (query, key) pair: Sq·Sk pairs, or when causal FlashAttention's
    Sq·Sk/2 for a square mask and the bottom-right mask's exact count otherwise (query i
    sees keys j <= i + Sk - Sq: Sq 4096 over Sk 1024 leaves 12.5% of the pairs, not 50%)."""
    sq, sk = p["seqlen"], p["kv_seqlen"]
    pairs = sq * sk
    if p["causal"]:
        pairs = sq * sk / 2 if sq == sk else causal_pairs(sq, sk)
    return 4.0 * p["batch"] * p["heads"] * p["head_dim"] * pairs


def causal_pairs(sq: int, sk: int) -> int:
    """(query, key) pairs the bottom-right causal mask leaves visible: query i sees
    min(sk, max(0, i + sk - sq + 1)) keys. With sk >= sq that is sk - sq + 1 + i for
    every query; with sk < sq the first sq - sk see none and the rest 1..sk."""
    if sk >= sq:
        return sq * (sk - sq + 1) + sq * (sq - 1) // 2
    return sk * (sk + 1) // 2


def reference_rows(q: np.ndarray, k: np.ndarray, v: np.ndarray, rows: np.ndarray, causal: bool,
                   scale: float) -> np.ndarray:
    """Exact (float64) attention output for the given query rows of one head. Causal
    masking is aligned bottom-right: query i sees keys j <= i + (Sk - Sq); a row that sees
    no key is zero."""
    sq, sk = q.shape[0], k.shape[0]
    s = (q[rows] @ k.T) * scale
    if causal:
        visible = np.arange(sk)[None, :] <= (rows[:, None] + (sk - sq))
        s = np.where(visible, s, -np.inf)
    row_max = np.max(s, axis=1, keepdims=True)
    empty = ~np.isfinite(row_max)
    p = np.exp(s - np.where(empty, 0.0, row_max))
    p[np.broadcast_to(empty, p.shape)] = 0.0
    denom = p.sum(axis=1, keepdims=True)
    return np.divide(p @ v, denom, out=np.zeros((len(rows), v.shape[1])), where=denom > 0)


# P·V is summed in fp32 over the keys, one running sum per output element (the kernels
# here, FlashAttention, cuDNN): its rounding errors add up as a random walk, about
# u_fp32·sqrt(kv) relative to rms(O) (O is a weighted mean of kv values of V, so rms(O)
# falls as 1/sqrt(kv) while each partial sum's rounding does not). Measured, the largest
# error over every row of 32 heads reached 4.3·u_fp32·sqrt(kv) at kv 4096 (own avx512
# fp32 kernel, Zen 4): 1.63e-5, above the 1.12e-5 the tolerance was without this term, so
# a correct long-sequence result failed. ACCUMULATION_K leaves 4x over that; a lost 64-key
# tile at kv 4096 still errs ~1000x more (tests/test_attention_suite.py).
ACCUMULATION_K = 16.0


def attention_tolerance(dtype: str, ref: np.ndarray, kv_seqlen: int) -> float:
    """Largest error relative to rms(O): output rounding (scaled by max|O|/rms(O)) plus,
    for 16-bit types, P rounded to that type before P·V, plus fp32 accumulation over
    `kv_seqlen` keys and an approximate exp. A wrong mask or a lost tile is far above this."""
    rms = float(np.sqrt(np.mean(ref * ref))) or 1.0
    return _tolerance(dtype, float(np.max(np.abs(ref))) / rms, kv_seqlen)


def _tolerance(dtype: str, spread: float, kv_seqlen: int) -> float:
    u = FORMATS[dtype].unit_roundoff  # of the format the output (and, 16-bit, P) is rounded to
    accumulation = ACCUMULATION_K * FORMATS["fp32"].unit_roundoff * math.sqrt(kv_seqlen)
    tol = 4.0 * u * spread + 1e-5 + accumulation
    if dtype != "fp32":
        tol += 8.0 * u
    return tol


def sampled_rows(rng: np.random.Generator, seqlen: int, count: int = 32) -> np.ndarray:
    if seqlen <= count:
        return np.arange(seqlen)
    picks = {0, 1, seqlen - 1, seqlen // 2}
    picks.update(rng.choice(seqlen, count - len(picks), replace=False).tolist())
    return np.array(sorted(picks))


def kv_head(h: int, heads: int, kv_heads: int) -> int:
    return h // (heads // kv_heads)


def default_scale(head_dim: int) -> float:
    return 1.0 / math.sqrt(head_dim)
