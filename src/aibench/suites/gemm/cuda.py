"""GEMM on the cuda target: cuBLASLt from C++ (`cublas`), aibench's own tensor-core kernel
(`aibench`), CuPy (`cupy`) and PyTorch (`torch`), all on the same random operands."""

from __future__ import annotations

from typing import Any

from ...dtypes import FORMATS, decode, poison
from ...errors import SkipCase
from ...targets import torch_missing
from ...targets import cuda as cu
from ..base import RunContext
from .common import GemmRunner

# cuBLASLt's fp8 and int8 kernels want the "TN" layout: B stored (n, k), k contiguous.
_B_TRANSPOSED = {"fp8", "int8"}
_FILL_RANGE = {"int8": (-8.0, 8.0)}  # small integers: the int32 sum is exact


def device_bytes(params: dict[str, Any]) -> int:
    """GPU memory for A, B and C of one impl."""
    m, n, k, dtype = params["m"], params["n"], params["k"], params["dtype"]
    in_item = FORMATS[dtype].itemsize
    out_item = FORMATS[FORMATS[dtype].output].itemsize
    return (m * k + k * n) * in_item + m * n * out_item


class CudaOperands(GemmRunner):
    """Random A, B and an output C on one GPU, filled by aibench._cuda.fill_uniform."""

    timing = cu.TIMING_FROM_PYTHON  # how `time` is timed (impl_detail["timing"])

    b_layout_for = staticmethod(lambda dtype: "nk" if dtype in _B_TRANSPOSED else "kn")

    def __init__(self, params: dict[str, Any], ctx: RunContext):
        self.cuda = cu.require(ctx.target)
        import cupy

        self.cupy = cupy
        self.index = ctx.target.index or 0
        self.params, self.dtype = params, params["dtype"]
        m, n, k = params["m"], params["n"], params["k"]
        self.b_layout = self.b_layout_for(self.dtype)
        self.out_fmt = FORMATS[self.dtype].output
        cu.require_device_memory(device_bytes(params), ctx.target, f"gemm {m}x{n}x{k} {self.dtype}")
        self.device = cupy.cuda.Device(self.index)
        self.device.use()
        storage = FORMATS[self.dtype].storage
        self.a = cupy.empty((m, k), dtype=storage)
        self.b = cupy.empty((n, k) if self.b_layout == "nk" else (k, n), dtype=storage)
        self.c = cupy.empty((m, n), dtype=FORMATS[self.out_fmt].storage)
        lo, hi = _FILL_RANGE.get(self.dtype, (-1.0, 1.0))
        for seed, arr in ((ctx.seed * 2 + 1, self.a), (ctx.seed * 2 + 2, self.b)):
            self.cuda.fill_uniform(self.index, arr.data.ptr, arr.size, self.dtype, seed, lo, hi)
        self.flusher = cu.L2Flusher(self.index)
        self.telemetry_start = cu.telemetry_snapshot(self.index)

    def poison_output(self) -> None:
        poison(*self.output())
        self.cupy.cuda.Device().synchronize()

    def sample(self, rows, cols):
        fmt = "fp32" if self.dtype == "tf32" else self.dtype
        a_rows = decode(self.a[self.cupy.asarray(rows)].get(), fmt)
        if self.b_layout == "nk":
            b_cols = decode(self.b[self.cupy.asarray(cols)].get(), fmt).T
        else:
            b_cols = decode(self.b[:, self.cupy.asarray(cols)].get(), fmt)
        c_block = decode(self.c[self.cupy.ix_(self.cupy.asarray(rows), self.cupy.asarray(cols))].get(), self.out_fmt)
        return a_rows, b_cols, c_block

    def rows(self, which, start, stop):
        fmt = "fp32" if self.dtype == "tf32" else self.dtype
        if which == "c":
            return decode(self.c[start:stop].get(), self.out_fmt)
        if which == "a":
            return decode(self.a[start:stop].get(), fmt)
        if self.b_layout == "nk":  # stored (n, k): rows of B are columns of the storage
            return decode(self.cupy.ascontiguousarray(self.b[:, start:stop].T).get(), fmt)
        return decode(self.b[start:stop].get(), fmt)

    def output(self):
        return self.c, self.out_fmt

    def validation_dtype(self) -> str:
        return self.dtype

    def peak(self) -> dict | None:
        return cu.peak(self.index, self.dtype)

    def telemetry(self) -> dict | None:
        return cu.telemetry_window(self.telemetry_start, cu.telemetry_snapshot(self.index))

    def detail(self) -> dict:
        return {"device": cu.device_name(self.index), "b_layout": self.b_layout,
                "output": self.out_fmt, "l2_flush_bytes": self.flusher.nbytes, "timing": self.timing}

    def close(self) -> None:
        self.a = self.b = self.c = self.flusher = None
        self.cupy.get_default_memory_pool().free_all_blocks()


class _PlanRunner(CudaOperands):
    """A GEMM planned in aibench._cuda: timed in C++ with CUDA events, L2 flushed before every launch."""

    timing = cu.TIMING_IN_CPP

    def time(self, number: int, l2_flush: bool = True) -> float:
        return cu.plan_timer(self.plan, self.flusher, number, l2_flush)

    def run(self) -> None:
        self.plan.run()


class CublasRunner(_PlanRunner):
    name = "cublas"
    target_kinds = ("cuda",)
    description = "cuBLASLt from C++: heuristic algorithm, 32 MiB workspace (fp8/int8 in TN layout)"
    unavailable = staticmethod(cu.unavailable_reason)

    def __init__(self, params, ctx):
        super().__init__(params, ctx)
        p = self.params
        self.plan = self.cuda.CublasLtGemm(self.index, p["m"], p["n"], p["k"], self.dtype,
                                           self.a.data.ptr, self.b.data.ptr, self.c.data.ptr, self.b_layout)

    def detail(self) -> dict:
        return {**super().detail(), "algo": self.plan.algo_info, "cublaslt_version": self.cuda.cublaslt_version()}


class OwnMmaRunner(_PlanRunner):
    name = "aibench"
    target_kinds = ("cuda",)
    description = ("aibench's tensor-core kernel (bf16/fp16): on Hopper built for sm_90a, wgmma with a TMA + mbarrier "
                   "pipeline; elsewhere shared-memory tiles, cp.async pipeline, ldmatrix + mma.sync")
    unavailable = staticmethod(cu.unavailable_reason)

    def __init__(self, params, ctx):
        if params["dtype"] not in ("bf16", "fp16"):
            raise SkipCase(f"aibench's own CUDA GEMM covers bf16 and fp16, not {params['dtype']} (cublas covers it)")
        super().__init__(params, ctx)
        p = self.params
        self.plan = self.cuda.MmaGemm(self.index, p["m"], p["n"], p["k"], self.dtype,
                                      self.a.data.ptr, self.b.data.ptr, self.c.data.ptr)

    def detail(self) -> dict:
        return {**super().detail(), "kernel": self.plan.describe}


class CupyRunner(CudaOperands):
    name = "cupy"
    target_kinds = ("cuda",)
    description = "cupy.matmul (cublasGemmEx); tf32 through CuPy's compute-type setting"
    unavailable = staticmethod(cu.unavailable_reason)
    _NOT_CUBLAS = {"bf16": "CuPy's bf16 matmul is experimental", "fp8": "CuPy has no fp8 matmul",
                   "int8": "CuPy's integer matmul is its own kernel, not cuBLAS"}

    def __init__(self, params, ctx):
        if params["dtype"] in self._NOT_CUBLAS:
            raise SkipCase(self._NOT_CUBLAS[params["dtype"]])
        super().__init__(params, ctx)
        self._restore = None
        if self.dtype == "tf32":
            from cupy._core import _routines_linalg as linalg

            previous = linalg.get_compute_type(self.cupy.float32)
            linalg.set_compute_type(self.cupy.float32, linalg.COMPUTE_TYPE_TF32)
            self._restore = lambda: linalg.set_compute_type(self.cupy.float32, previous)
        a, b, c = self.a, self.b, self.c
        self.launch = lambda: self.cupy.matmul(a, b, out=c)
        self.time = cu.event_timer(self.launch, self.flusher)

    def run(self) -> None:
        self.launch()
        self.cupy.cuda.Device().synchronize()

    def detail(self) -> dict:
        return {**super().detail(), "cupy": self.cupy.__version__}

    def close(self) -> None:
        if self._restore:
            self._restore()
        super().close()


class TorchCudaRunner(CudaOperands):
    name = "torch"
    target_kinds = ("cuda",)
    description = "torch.matmul on CUDA (cuBLAS/cuBLASLt); torch._int_mm for int8, torch._scaled_mm for fp8"
    unavailable = staticmethod(torch_missing)

    def __init__(self, params, ctx):
        super().__init__(params, ctx)
        import torch

        self.torch = torch
        view = {"bf16": torch.bfloat16, "fp8": torch.float8_e4m3fn}.get(self.dtype)
        a, b = torch.from_dlpack(self.a), torch.from_dlpack(self.b)
        c = torch.from_dlpack(self.c)
        if view is not None:
            a, b = a.view(view), b.view(view)
        if self.out_fmt == "bf16":
            c = c.view(torch.bfloat16)
        self._tf32 = torch.backends.cuda.matmul.allow_tf32
        torch.backends.cuda.matmul.allow_tf32 = self.dtype == "tf32"
        if self.dtype == "int8":
            bt = b.t()  # stored (n, k): its transpose is a column-major (k, n)
            self.launch = lambda: torch._int_mm(a, bt)
        elif self.dtype == "fp8":
            bt, one = b.t(), torch.ones((), device=a.device, dtype=torch.float32)
            self.launch = lambda: torch._scaled_mm(a, bt, scale_a=one, scale_b=one, out_dtype=torch.bfloat16)
        else:
            self.launch = lambda: torch.matmul(a, b, out=c)
        self.c_torch = c
        self.time = cu.event_timer(self.launch, self.flusher)

    def run(self) -> None:
        out = self.launch()
        if out is not self.c_torch and out is not None:
            self.c_torch.copy_(out)
        self.torch.cuda.synchronize()

    def collect_timed_output(self) -> None:
        """_int_mm and _scaled_mm return their output: the last timed one is validated."""
        out = self.time.last
        if out is not self.c_torch and out is not None:
            self.c_torch.copy_(out)
            self.torch.cuda.synchronize()

    def detail(self) -> dict:
        return {**super().detail(), "torch": self.torch.__version__}

    def close(self) -> None:
        self.torch.backends.cuda.matmul.allow_tf32 = self._tf32
        super().close()


IMPLS = (CublasRunner, OwnMmaRunner, CupyRunner, TorchCudaRunner)
