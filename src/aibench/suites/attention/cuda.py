"""Attention on the cuda target: aibench's flash-attention forward kernel and torch's SDPA,
on the same random operands in GPU memory (CuPy arrays)."""

from __future__ import annotations

from typing import Any

from ...dtypes import FORMATS, decode, poison
from ...errors import SkipCase
from ...targets import cuda as cu
from ...targets import torch_missing
from ..base import RunContext
from .common import AttentionRunner, default_scale, kv_head
from .cpu import TorchSdpa

_CUDA_DTYPES = ("bf16", "fp16")


def device_bytes(p: dict[str, Any]) -> int:
    """GPU memory for q, k, v and o of one impl (2-byte elements)."""
    b, h, hk, sq, sk, d = p["batch"], p["heads"], p["kv_heads"], p["seqlen"], p["kv_seqlen"], p["head_dim"]
    return 2 * (2 * b * h * sq * d + 2 * b * hk * sk * d)


class CudaOperands(AttentionRunner):
    timing = cu.TIMING_FROM_PYTHON  # how `time` is timed (impl_detail["timing"])

    def __init__(self, p: dict[str, Any], ctx: RunContext):
        if p["dtype"] not in _CUDA_DTYPES:
            raise SkipCase(f"attention on cuda runs in bf16 and fp16, not {p['dtype']}")
        self.cuda = cu.require(ctx.target)
        import cupy

        self.cupy, self.p, self.index = cupy, p, ctx.target.index or 0
        b, h, hk, sq, sk, d = p["batch"], p["heads"], p["kv_heads"], p["seqlen"], p["kv_seqlen"], p["head_dim"]
        cu.require_device_memory(device_bytes(p), ctx.target, "attention case")
        cupy.cuda.Device(self.index).use()
        dt = FORMATS[p["dtype"]].storage
        self.q = cupy.empty((b, h, sq, d), dtype=dt)
        self.k = cupy.empty((b, hk, sk, d), dtype=dt)
        self.v = cupy.empty((b, hk, sk, d), dtype=dt)
        self.o = cupy.empty((b, h, sq, d), dtype=dt)
        for seed, arr in enumerate((self.q, self.k, self.v), start=ctx.seed * 3 + 1):
            self.cuda.fill_uniform(self.index, arr.data.ptr, arr.size, p["dtype"], seed, -1.0, 1.0)
        self.flusher = cu.L2Flusher(self.index)
        self.telemetry_start = cu.telemetry_snapshot(self.index)

    def head(self, b, h):
        hk = kv_head(h, self.p["heads"], self.p["kv_heads"])
        fmt = self.p["dtype"]
        return (decode(self.q[b, h].get(), fmt), decode(self.k[b, hk].get(), fmt),
                decode(self.v[b, hk].get(), fmt), decode(self.o[b, h].get(), fmt))

    def poison_output(self) -> None:
        poison(*self.output())
        self.cupy.cuda.Device().synchronize()  # the poison lands before the timed call, whatever its stream

    def output(self):
        return self.o, self.p["dtype"]

    def peak(self) -> dict | None:
        return cu.peak(self.index, self.p["dtype"])

    def telemetry(self) -> dict | None:
        return cu.telemetry_window(self.telemetry_start, cu.telemetry_snapshot(self.index))

    def detail(self) -> dict:
        return {"device": cu.device_name(self.index), "l2_flush_bytes": self.flusher.nbytes, "timing": self.timing}

    def close(self) -> None:
        self.q = self.k = self.v = self.o = self.flusher = None
        self.cupy.get_default_memory_pool().free_all_blocks()


class OwnFlashRunner(CudaOperands):
    name = "aibench"
    target_kinds = ("cuda",)
    description = ("aibench's flash-attention forward: Q tile in registers, K/V tiles double-buffered with "
                   "cp.async, mma.sync, online softmax (bf16/fp16, head dim 64/128)")
    unavailable = staticmethod(cu.unavailable_reason)

    def __init__(self, p, ctx):
        if p["head_dim"] not in (64, 128):
            raise SkipCase(f"aibench's CUDA attention covers head dim 64 and 128, not {p['head_dim']}")
        super().__init__(p, ctx)
        self.plan = self.cuda.FlashAttention(
            self.index, p["batch"], p["heads"], p["kv_heads"], p["seqlen"], p["kv_seqlen"], p["head_dim"],
            p["dtype"], p["causal"], default_scale(p["head_dim"]),
            self.q.data.ptr, self.k.data.ptr, self.v.data.ptr, self.o.data.ptr)

    timing = cu.TIMING_IN_CPP

    def time(self, number: int, l2_flush: bool = True) -> float:
        return cu.plan_timer(self.plan, self.flusher, number, l2_flush)

    def run(self) -> None:
        self.plan.run()

    def detail(self) -> dict:
        return {**super().detail(), "kernel": self.plan.describe}


class TorchCudaAttentionRunner(CudaOperands):
    name = "torch"
    target_kinds = ("cuda",)
    description = "torch.nn.functional.scaled_dot_product_attention (flash backend where it applies)"
    unavailable = staticmethod(torch_missing)

    def __init__(self, p, ctx):
        super().__init__(p, ctx)
        self.sdpa = TorchSdpa(p)
        q, k, v, self.o_t = self.sdpa.tensors(self.q, self.k, self.v, self.o)
        self.args = (q, k, v)
        self.time = cu.event_timer(lambda: self.sdpa(*self.args), self.flusher)

    def run(self) -> None:
        self.o_t.copy_(self.sdpa(*self.args))
        self.sdpa.torch.cuda.synchronize()

    def collect_timed_output(self) -> None:
        self.o_t.copy_(self.time.last)  # SDPA returns its output: the last timed one
        self.sdpa.torch.cuda.synchronize()

    def detail(self) -> dict:
        return {**super().detail(), **self.sdpa.detail()}


IMPLS = (OwnFlashRunner, TorchCudaAttentionRunner)

