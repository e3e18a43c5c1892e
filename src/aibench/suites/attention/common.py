"""What every attention implementation provides, the float64 reference, and FLOPs."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ...dtypes import FORMATS
from ...results import FAILED, PASSED, Validation
from ..kernel import KernelRunner



class AttentionRunner(KernelRunner):
    def flops(self) -> float:
        return attention_flops(self.params)

    def validate(self) -> Validation:
        """Float64 reference rows of sampled heads of the output just computed."""
        p = self.params
        rng = np.random.default_rng(self.seed + 11)
        scale = default_scale(p["head_dim"])
        errors, refs = [], []
        for b, h in sampled_heads(rng, p["batch"], p["heads"]):
            q, k, v, o = self.head(b, h)
            rows = sampled_rows(rng, p["seqlen"])
            ref = reference_rows(q, k, v, rows, p["causal"], scale)
            got = o[rows]
            refs.append(ref)
            errors.append(np.inf if not np.all(np.isfinite(got)) else float(np.max(np.abs(got - ref))))
        ref_all = np.concatenate(refs)
        rms = float(np.sqrt(np.mean(ref_all * ref_all))) or 1.0
        error = max(errors) / rms
        tol = attention_tolerance(p["dtype"], ref_all)
        if error <= tol:
            return Validation(status=PASSED, max_rel_error=error, tolerance=tol)
        return Validation(status=FAILED, max_rel_error=error, tolerance=tol,
                          reason=f"wrong result: max error {error:.3g} (relative to the rms of O) exceeds "
                                 f"tolerance {tol:.3g}")

    def head(self, b: int, h: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(q[b, h], k[b, h_kv], v[b, h_kv], o[b, h]) of the first buffer set as float64,
        inputs exactly as stored: (Sq, D), (Sk, D), (Sk, D), (Sq, D)."""
        raise NotImplementedError


def attention_flops(p: dict[str, Any]) -> float:
    """FlashAttention's convention: 4·B·H·Sq·Sk·D for the forward, halved when causal."""
    flops = 4.0 * p["batch"] * p["heads"] * p["seqlen"] * p["kv_seqlen"] * p["head_dim"]
    return flops / 2 if p["causal"] else flops


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


def attention_tolerance(dtype: str, ref: np.ndarray) -> float:
    """Largest error relative to rms(O): output rounding (scaled by max|O|/rms(O)) plus,
    for 16-bit types, P rounded to that type before P·V, plus fp32 accumulation and an
    approximate exp. A wrong mask or a lost tile is far above this."""
    rms = float(np.sqrt(np.mean(ref * ref))) or 1.0
    spread = float(np.max(np.abs(ref))) / rms
    u = FORMATS[dtype].unit_roundoff  # of the format the output (and, 16-bit, P) is rounded to
    tol = 4.0 * u * spread + 1e-5
    if dtype != "fp32":
        tol += 8.0 * u
    return tol


def sampled_heads(rng: np.random.Generator, batch: int, heads: int, count: int = 3) -> list[tuple[int, int]]:
    pairs = {(0, 0), (batch - 1, heads - 1)}
    while len(pairs) < min(count, batch * heads):
        pairs.add((int(rng.integers(batch)), int(rng.integers(heads))))
    return sorted(pairs)


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
