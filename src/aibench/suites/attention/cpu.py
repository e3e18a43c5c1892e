"""Attention on the cpu target: aibench's fused C++ kernel, numpy, and torch when installed."""

from __future__ import annotations

import math
import os
import time
from typing import Any

import numpy as np
import psutil

from ... import _core
from ...dtypes import bf16_bits, bf16_to_float32, decode, poison
from ...errors import SkipCase, UsageError
from ...fit import fits
from ...targets import torch_missing
from ...targets.cpu import case_threads, cpu_peak_tflops, import_torch, kernel_method, last_level_cache_bytes
from ..base import RunContext
from ..gemm.cpu import BlasThreads, generation_temp_bytes, uniform_values
from ..kernel import CoreOpRunner, PythonLoopRunner
from .common import VALIDATION_ROWS, AttentionRunner, default_scale, kv_head

_MAX_BUFFER_SETS = 16
_PAD_D = 16  # kPadD of attention.hpp: rows of a repacked V are padded to a multiple of it
_BLOCK = 64  # kBlockQ = kBlockK of attention.hpp: the tile scratch is sized by them
_BF16_BITS_TEMP = 10  # bytes per value bf16_bits holds at its peak (uint32 steps + result)


def _shapes(p: dict[str, Any]):
    b, h, hk, sq, sk, d = p["batch"], p["heads"], p["kv_heads"], p["seqlen"], p["kv_seqlen"], p["head_dim"]
    return (b, h, sq, d), (b, hk, sk, d), (b, h, sq, d)


def _set_bytes(p: dict[str, Any]) -> int:
    q, kv, o = _shapes(p)
    item = 4 if p["dtype"] == "fp32" else 2
    return (math.prod(q) + 2 * math.prod(kv) + math.prod(o)) * item


def buffer_sets(p: dict[str, Any]) -> int:
    """How many (q, k, v, o) sets to rotate through: one, or enough to span twice the
    last-level cache when a set fits in it."""
    one, llc = _set_bytes(p), last_level_cache_bytes()
    return 1 if one >= llc else min(_MAX_BUFFER_SETS, math.ceil(2 * llc / one))


def memory_needed(p: dict[str, Any]) -> int:
    """Peak bytes a case makes this process hold, whichever CPU impl runs it: every buffer
    set; what the own kernel keeps (repacked V, per-thread tile scratch: grow-only, so
    still held while the later impls of the case run); and the larger of what operand
    generation makes and what the numpy impl holds (float32 copies, the causal mask) plus
    the larger of what it makes per call (two B·H·Sq·Sk float32 score arrays, the output
    and its bf16 rounding) and the validation's temporaries."""
    b, h, hk, sq, sk, d = p["batch"], p["heads"], p["kv_heads"], p["seqlen"], p["kv_seqlen"], p["head_dim"]
    bf16 = p["dtype"] == "bf16"
    sets = buffer_sets(p)
    nq, nkv = b * h * sq * d, b * hk * sk * d  # q and o; k and v
    scores = 4 * b * h * sq * sk
    out32 = 4 * nq  # the numpy impl's float32 output
    # numpy impl, held per set: K transposed to contiguous float32 (bf16: q, k, v as float32)
    numpy_held = sets * 4 * (nq + 2 * nkv if bf16 else nkv)
    mask = 4 * sq * sk if p["causal"] else 0
    numpy_calls = max(
        8 * max(nq, nkv) if bf16 else 0,  # construction: bf16 -> float32 steps, K before its transpose
        9 * sq * sk if p["causal"] else 0,  # construction: the mask's bool and float64 forms
        2 * scores + 8 * b * h * sq,  # s = (q kT) * scale: two score arrays; row max and sum
        scores + out32,  # softmax(s) @ v
        # run_once: the output, its nan_to_num copy and masks; bf16: its rounding to bf16 bits
        2 * out32 + 6 * nq + (_BF16_BITS_TEMP * nq if bf16 else 0),
    )
    # own kernel: V repacked (bf16: pairs of rows; fp32 with a head dim off the vector width)
    # into rows padded to _PAD_D, kept between calls; a tile scratch per thread
    pad_d = -(-d // _PAD_D) * _PAD_D
    repacked = 4 * b * hk * ((sk + 1) // 2 if bf16 else sk) * pad_d
    own_held = repacked + _core_threads() * 4 * _BLOCK * (d + 2 * pad_d + 2 * _BLOCK + 4)
    validation = _validation_temp_bytes(sq, sk, d)
    generation = max(generation_temp_bytes(p["dtype"], n) for n in (nq, nkv))
    return sets * _set_bytes(p) + own_held + max(generation, numpy_held + mask + max(numpy_calls, validation))


def _validation_temp_bytes(sq: int, sk: int, d: int) -> int:
    """AttentionRunner.validate: one head's q, k, v, o as float64 (the next head's made while
    the last is still held, and a bf16 decode's uint32 bits), and reference_rows' float64
    score rows of one block of queries (the scaled scores, the mask's where, exp, and the
    bool mask)."""
    rows = min(sq, VALIDATION_ROWS)
    heads = 2 * 8 * (2 * sq * d + 2 * sk * d) + 8 * max(sq, sk) * d
    return heads + rows * sk * (4 * 8 + 2) + 12 * rows * d * 8


def _core_threads() -> int:
    try:
        return int(_core.default_threads())
    except (AttributeError, RuntimeError):
        return os.cpu_count() or 1


def check_fits_in_memory(p: dict[str, Any]) -> None:
    """Refuse, before allocating, a case that cannot fit (memory_needed: the operands, the
    score matrices the numpy impl materialises, the own kernel's repacked V, and the
    generation and validation temporaries)."""
    reason = fits(memory_needed(p), psutil.virtual_memory().available, "attention case", held="operands and scores")
    if reason:
        raise UsageError(reason)


class _HostOperands(AttentionRunner):
    """Random q, k, v (uniform [-1, 1), never zeros) as float32 or bf16 bits, rotated
    among buffer sets when a set fits in the last-level cache."""

    def __init__(self, p: dict[str, Any], ctx: RunContext):
        self.p, self.ctx = p, ctx
        # The same threads for every impl of the case (targets/cpu.py case_threads).
        self.threads, self.threads_rule = case_threads()
        self.causal, self.scale = p["causal"], default_scale(p["head_dim"])
        self.bf16 = p["dtype"] == "bf16"
        rng = np.random.default_rng(ctx.seed)
        qs, kvs, os_ = _shapes(p)
        sets = buffer_sets(p)

        def make(shape):
            return uniform_values(rng, shape, p["dtype"])  # no float64 copy (memory_needed)

        self.q = [make(qs) for _ in range(sets)]
        self.k = [make(kvs) for _ in range(sets)]
        self.v = [make(kvs) for _ in range(sets)]
        self.o = [np.empty(os_, dtype=np.uint16 if self.bf16 else np.float32) for _ in range(sets)]

    def _f64(self, x: np.ndarray) -> np.ndarray:
        return decode(x, "bf16" if self.bf16 else "fp32")

    def head(self, b, h):
        hk = kv_head(h, self.p["heads"], self.p["kv_heads"])
        return (self._f64(self.q[0][b, h]), self._f64(self.k[0][b, hk]), self._f64(self.v[0][b, hk]),
                self._f64(self.o[0][b, h]))

    def poison_output(self) -> None:
        poison(*self.output())

    def output(self):
        return self.o[0], "bf16" if self.bf16 else "fp32"

    def peak(self) -> dict | None:
        return cpu_peak_tflops(self.p["dtype"])

    def parity_detail(self) -> dict:
        """How the case was timed, the same keys for every impl (as gemm's)."""
        return {"threads": self.threads, "threads_rule": self.threads_rule, "timing": self.timing_detail()}

    def tiny(self):
        """This impl with one query and one key of head dim 1 (its timed loop's overhead)."""
        return type(self)({**self.p, "batch": 1, "seqlen": 1, "kv_seqlen": 1, "head_dim": 1}, self.ctx)

    def close(self) -> None:
        self.q = self.k = self.v = self.o = []


class OwnAttentionRunner(CoreOpRunner, _HostOperands):
    name = "aibench"
    target_kinds = ("cpu",)
    description = ("aibench's fused C++ kernel: Q tiles against K/V tiles with the online softmax, "
                   "OpenMP over batch x heads x query tiles; bf16 on AVX512_BF16 or widened to fp32")

    def __init__(self, p, ctx):
        super().__init__(p, ctx)
        self.op = _core.Attention(self.q, self.k, self.v, self.o, p["dtype"], self.causal, self.scale,
                                  threads=self.threads)
        self.isa = self.op.describe["isa"]

    def peak(self) -> dict | None:
        return cpu_peak_tflops(self.p["dtype"], self.isa)  # the peak of the instructions this path uses

    def detail(self) -> dict:
        return {"isa": self.isa, "method": kernel_method(self.p["dtype"], self.isa),
                "buffer_sets": self.op.describe["buffer_sets"], **self.parity_detail()}

    def close(self) -> None:
        self.op = None
        super().close()


class NumpyAttentionRunner(PythonLoopRunner, _HostOperands):
    """What a straightforward implementation does: batched matmul, softmax, matmul (numpy's
    BLAS), materialising the scores. numpy has no bf16, so bf16 cases compute in float32
    from the bf16 inputs and round the output to bf16."""
    name = "numpy"
    target_kinds = ("cpu",)
    description = "numpy: matmul, softmax, matmul with numpy's BLAS (float32 math)"

    def __init__(self, p, ctx):
        super().__init__(p, ctx)
        self.blas_threads = BlasThreads(self.threads)
        b, h, hk, sq, sk = p["batch"], p["heads"], p["kv_heads"], p["seqlen"], p["kv_seqlen"]
        group = h // hk
        as32 = (lambda x: bf16_to_float32(x)) if self.bf16 else (lambda x: x)
        # Grouped-query heads as (B, Hkv, group, S, D) so that K/V broadcast over the group.
        self.q32 = [as32(x).reshape(b, hk, group, sq, -1) for x in self.q]
        self.kT32 = [np.ascontiguousarray(as32(x).swapaxes(-1, -2))[:, :, None] for x in self.k]
        self.v32 = [as32(x)[:, :, None] for x in self.v]
        self.mask = None
        if self.causal:
            hidden = np.arange(sk)[None, :] > (np.arange(sq)[:, None] + (sk - sq))
            self.mask = np.where(hidden, -np.inf, 0.0).astype(np.float32)

    def _forward(self, i: int) -> np.ndarray:
        s = np.matmul(self.q32[i], self.kT32[i]) * np.float32(self.scale)
        if self.mask is not None:
            s += self.mask
        s -= s.max(axis=-1, keepdims=True)
        np.exp(s, out=s)
        s /= s.sum(axis=-1, keepdims=True)
        return np.matmul(s, self.v32[i]).reshape(self.o[i].shape)

    def time(self, number: int) -> float:
        sets = len(self.q32)
        start = time.perf_counter()
        for i in range(number):
            out = self._forward(i % sets)
        elapsed = time.perf_counter() - start
        self.last = out
        return elapsed

    def run(self) -> None:
        self.last = self._forward(0)
        self.collect_timed_output()

    def collect_timed_output(self) -> None:
        out = np.nan_to_num(self.last, nan=0.0)  # rows that see no key: 0, as defined
        self.o[0][...] = bf16_bits(out) if self.bf16 else out

    def detail(self) -> dict:
        return {"numpy": np.__version__, "math": "float32", "buffer_sets": len(self.q), **self.parity_detail()}

    def close(self) -> None:
        if getattr(self, "blas_threads", None) is not None:
            self.blas_threads.restore()
            self.blas_threads = None
        super().close()


class TorchAttentionRunner(PythonLoopRunner, _HostOperands):
    name = "torch"
    target_kinds = ("cpu",)
    description = "torch.nn.functional.scaled_dot_product_attention"
    unavailable = staticmethod(torch_missing)

    def __init__(self, p, ctx):
        super().__init__(p, ctx)
        self.sdpa = TorchSdpa(p)
        self.sdpa.torch.set_num_threads(self.threads)  # the case's threads, as every impl
        self.t = [self.sdpa.tensors(q, k, v, o) for q, k, v, o in zip(self.q, self.k, self.v, self.o)]

    def time(self, number: int) -> float:
        sets = len(self.t)
        start = time.perf_counter()
        for i in range(number):
            out = self.sdpa(*self.t[i % sets][:3])
        elapsed = time.perf_counter() - start
        self.last = out
        return elapsed

    def run(self) -> None:
        self.last = self.sdpa(*self.t[0][:3])
        self.collect_timed_output()

    def collect_timed_output(self) -> None:
        self.t[0][3].copy_(self.last)

    def detail(self) -> dict:
        return {**self.sdpa.detail(), **self.parity_detail()}


class TorchSdpa:
    """torch's SDPA with aibench's conventions (bottom-right causal, grouped-query heads),
    on tensors that share memory with aibench's buffers (CPU numpy or CUDA CuPy)."""

    def __init__(self, p: dict[str, Any]):
        if p["causal"] and p["seqlen"] > p["kv_seqlen"]:
            raise SkipCase("causal with seqlen > kv_seqlen leaves rows with no visible key, which torch does not define as 0")
        torch = import_torch()
        import torch.nn.functional as F

        self.torch, self.F = torch, F
        self.p, self.scale = p, default_scale(p["head_dim"])
        self.kwargs: dict[str, Any] = {"scale": self.scale, "enable_gqa": p["kv_heads"] != p["heads"]}
        if p["causal"] and p["seqlen"] == p["kv_seqlen"]:
            self.kwargs["is_causal"] = True
        elif p["causal"]:
            from torch.nn.attention.bias import causal_lower_right

            self.kwargs["attn_mask"] = causal_lower_right(p["seqlen"], p["kv_seqlen"])

    def tensors(self, *arrays):
        torch = self.torch
        out = []
        for a in arrays:
            t = torch.from_dlpack(a) if not isinstance(a, np.ndarray) else torch.from_numpy(a)
            if self.p["dtype"] == "bf16":
                t = t.view(torch.bfloat16)
            out.append(t)
        return out

    def __call__(self, q, k, v):
        return self.F.scaled_dot_product_attention(q, k, v, **self.kwargs)

    def detail(self) -> dict:
        return {"torch": self.torch.__version__, "torch_threads": self.torch.get_num_threads(),
                "causal_mask": "is_causal" if "is_causal" in self.kwargs else
                ("causal_lower_right" if "attn_mask" in self.kwargs else "none")}


IMPLS = (OwnAttentionRunner, NumpyAttentionRunner, TorchAttentionRunner)
