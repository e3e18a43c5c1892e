"""What every attention implementation provides, the float64 reference, and FLOPs."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..kernel import KernelRunner

# Unit roundoff of the formats the output (and, for 16-bit types, P) is rounded to.
_U = {"fp32": 2.0**-24, "bf16": 2.0**-8, "fp16": 2.0**-11}


class AttentionRunner(KernelRunner):
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
    u = _U[dtype]
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
