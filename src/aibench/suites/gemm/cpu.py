"""GEMM on the cpu target: aibench's own kernel, numpy's BLAS, and torch when installed.

bf16 operands are held as bf16 bits (uint16 arrays), int8 as int8. The own kernel gives
bf16 an fp32 output (fp32 accumulation, one rounding to fp32) and int8 an int32 output;
torch.matmul on bfloat16 tensors outputs bf16, torch._int_mm int32. numpy has neither a
bf16 nor an int8 BLAS, so the blas impl skips them.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
import psutil

from ... import _core
from ...dtypes import bf16_bits, bf16_to_float32
from ...errors import SkipCase, UsageError
from ...targets import torch_missing
from ...targets.cpu import cpu_peak_tflops, import_torch, last_level_cache_bytes
from ..base import RunContext
from .common import GemmRunner

_NP_DTYPE = {"fp32": np.float32, "fp64": np.float64, "bf16": np.uint16, "int8": np.int8}
# Output (C) storage of the own kernel and blas; torch's bf16 output is bf16 (uint16 bits).
_NP_OUT_DTYPE = {"fp32": np.float32, "fp64": np.float64, "bf16": np.float32, "int8": np.int32}
# What a poisoned output holds, per storage: NaN, a bf16 NaN, or the most negative int32
# (no exact int8 product of the sizes run here reaches it).
_POISON = {np.dtype(np.uint16): 0x7FC0, np.dtype(np.int32): np.iinfo(np.int32).min}
_LOWP_INSTRUCTIONS = {"bf16": "AVX512_BF16 (VDPBF16PS)", "int8": "AVX512_VNNI (VPDPBUSD)"}
_MAX_BUFFER_SETS = 64


def set_bytes(params: dict[str, Any]) -> int:
    m, n, k = params["m"], params["n"], params["k"]
    dtype = params["dtype"]
    return ((m * k + k * n) * np.dtype(_NP_DTYPE[dtype]).itemsize
            + m * n * np.dtype(_NP_OUT_DTYPE[dtype]).itemsize)


def buffer_sets(params: dict[str, Any]) -> int:
    """How many (A, B, C) sets to rotate through so that consecutive GEMMs do not find
    their operands in the last-level cache: enough to span twice the LLC."""
    one = set_bytes(params)
    llc = last_level_cache_bytes()
    if one >= llc:
        return 1
    return min(_MAX_BUFFER_SETS, math.ceil(2 * llc / one))


def check_fits_in_memory(params: dict[str, Any]) -> None:
    """Refuse, before allocating, a case whose operands do not fit in available memory."""
    need = set_bytes(params)  # at least one set; more sets only for cache-sized shapes
    avail = psutil.virtual_memory().available
    if need > 0.8 * avail:
        raise UsageError(
            f"gemm {params['m']}x{params['n']}x{params['k']} {params['dtype']} needs "
            f"{need / 2**30:.1f} GiB for A, B and C; only {avail / 2**30:.1f} GiB of memory is available"
        )


def _random_operand(rng: np.random.Generator, shape: tuple[int, int], dtype: str, k: int) -> np.ndarray:
    """Uniform in [-1, 1) for float types (bf16: rounded to bf16, as bits); for int8 the
    full range [-128, 127], narrowed to [-8, 8] where 128 * 128 * k could leave int32,
    so that the int32 sum is always exact."""
    if dtype == "int8":
        lo, hi = (-128, 127) if 128 * 128 * k < 2**31 else (-8, 8)
        return rng.integers(lo, hi, shape, dtype=np.int8, endpoint=True)
    values = rng.uniform(-1, 1, shape)
    if dtype == "bf16":
        return bf16_bits(values.astype(np.float32))
    return values.astype(_NP_DTYPE[dtype])


def _as_float64(x: np.ndarray, stored_as: str) -> np.ndarray:
    """Exact float64 values of an array as stored (bf16: bits in uint16)."""
    if stored_as == "bf16":
        return bf16_to_float32(x).astype(np.float64)
    return x.astype(np.float64)


class _NumpyOperands(GemmRunner):
    """Random A, B (uniform in [-1, 1), never zeros; int8: random integers) and C,
    rotated among buffer sets."""

    out_dtype = _NP_OUT_DTYPE  # dtype -> numpy storage of C

    def __init__(self, params: dict[str, Any], ctx: RunContext):
        self.params = params
        self.dtype = params["dtype"]
        m, n, k = params["m"], params["n"], params["k"]
        rng = np.random.default_rng(ctx.seed)
        sets = buffer_sets(params)
        self.a = [_random_operand(rng, (m, k), self.dtype, k) for _ in range(sets)]
        self.b = [_random_operand(rng, (k, n), self.dtype, k) for _ in range(sets)]
        self.c = [np.empty((m, n), dtype=self.out_dtype[self.dtype]) for _ in range(sets)]

    def poison_output(self) -> None:
        self.c[0].fill(_POISON.get(self.c[0].dtype, np.nan))

    def sample(self, rows, cols):
        out_fmt = "bf16" if self.c[0].dtype == np.uint16 else "native"
        return (_as_float64(self.a[0][rows, :], self.dtype), _as_float64(self.b[0][:, cols], self.dtype),
                _as_float64(self.c[0][np.ix_(rows, cols)], out_fmt))

    def validation_dtype(self) -> str:
        # bf16 with an fp32 output: the output is rounded to fp32, not to bf16.
        if self.dtype == "bf16" and self.c[0].dtype == np.float32:
            return "bf16-fp32out"
        return self.dtype

    def peak(self) -> dict | None:
        return cpu_peak_tflops(self.dtype)

    def close(self) -> None:
        self.a = self.b = self.c = []


class OwnKernelRunner(_NumpyOperands):
    """aibench's C++ kernel; its timing loop is C++ (steady clock)."""

    description = ("aibench's C++ kernel: packed panels, cache blocking, AVX-512/AVX2 micro-kernels, OpenMP; "
                   "bf16 with AVX512_BF16 (fp32 output), int8 with AVX512_VNNI (int32 output)")
    unavailable = staticmethod(lambda target: None)

    def __init__(self, params, ctx):
        dtype = params["dtype"]
        if dtype in _LOWP_INSTRUCTIONS:
            paths = _core.lowp_paths(dtype)
            if not paths:
                # An emulation would be slow and is never reported as the kernel's figure.
                raise SkipCase(f"this CPU lacks {_LOWP_INSTRUCTIONS[dtype]}, which aibench's {dtype} "
                               "kernel needs (no emulated path is offered)")
            self.isa = paths[0]
        else:
            self.isa = _core.best_isa()
        super().__init__(params, ctx)

    def timer(self, number: int) -> float:
        return _core.time_gemm(self.a, self.b, self.c, number, self.isa)

    def run_once(self) -> None:
        _core.gemm(self.a[0], self.b[0], self.c[0], self.isa)

    def detail(self) -> dict:
        return {"isa": self.isa, "threads": _core.default_threads(), "buffer_sets": len(self.a), "output": _out_name(self.c[0]),
                "blocking": _core.gemm_blocking(self.isa, self.dtype)}


class BlasRunner(_NumpyOperands):
    """numpy.matmul, i.e. the BLAS numpy was built with: what the user's libraries do."""

    description = "numpy.matmul with the BLAS numpy links (OpenBLAS in PyPI wheels)"
    unavailable = staticmethod(lambda target: None)

    def __init__(self, params, ctx):
        if params["dtype"] in _LOWP_INSTRUCTIONS:
            # numpy.matmul on int8 is numpy's own loop, and numpy has no bf16 type.
            raise SkipCase(f"numpy has no {params['dtype']} BLAS GEMM")
        super().__init__(params, ctx)

    def timer(self, number: int) -> float:
        a, b, c, sets = self.a, self.b, self.c, len(self.a)
        start = time.perf_counter()
        for i in range(number):
            np.matmul(a[i % sets], b[i % sets], out=c[i % sets])
        return time.perf_counter() - start

    def run_once(self) -> None:
        np.matmul(self.a[0], self.b[0], out=self.c[0])

    def detail(self) -> dict:
        from threadpoolctl import threadpool_info

        blas = [{k: i.get(k) for k in ("internal_api", "version", "num_threads", "architecture")}
                for i in threadpool_info() if i.get("user_api") == "blas"]
        return {"numpy": np.__version__, "blas": blas, "buffer_sets": len(self.a)}


class TorchCpuRunner(_NumpyOperands):
    description = ("torch.matmul on CPU (oneDNN/MKL) for fp32, fp64 and bf16 (bf16 output); "
                   "torch._int_mm for int8 (int32 output)")
    unavailable = staticmethod(torch_missing)
    # torch.matmul on bfloat16 tensors returns bfloat16: C is held as bf16 bits.
    out_dtype = {**_NP_OUT_DTYPE, "bf16": np.uint16}

    def __init__(self, params, ctx):
        super().__init__(params, ctx)
        torch = import_torch()

        self.torch = torch
        if self.dtype == "bf16":
            # Same memory, seen as bfloat16 (through int16: bit patterns are kept).
            as_torch = lambda x: torch.from_numpy(x.view(np.int16)).view(torch.bfloat16)  # noqa: E731
        else:
            as_torch = torch.from_numpy
        self.ta = [as_torch(x) for x in self.a]
        self.tb = [as_torch(x) for x in self.b]
        self.tc = [as_torch(x) for x in self.c]
        self.mm = torch._int_mm if self.dtype == "int8" else torch.matmul
        try:  # torch states its own shape limits (e.g. _int_mm's on some builds): skip on them
            self.mm(self.ta[0], self.tb[0], out=self.tc[0])
        except RuntimeError as e:
            p = self.params
            raise SkipCase(f"torch {self.mm.__name__} refuses {p['m']}x{p['n']}x{p['k']} {self.dtype} on CPU: "
                           f"{str(e).splitlines()[0]}") from None

    def timer(self, number: int) -> float:
        mm, a, b, c, sets = self.mm, self.ta, self.tb, self.tc, len(self.ta)
        start = time.perf_counter()
        for i in range(number):
            mm(a[i % sets], b[i % sets], out=c[i % sets])
        return time.perf_counter() - start

    def run_once(self) -> None:
        self.mm(self.ta[0], self.tb[0], out=self.tc[0])

    def detail(self) -> dict:
        return {"torch": self.torch.__version__, "threads": self.torch.get_num_threads(),
                "op": f"torch.{self.mm.__name__}", "output": _out_name(self.c[0]), "buffer_sets": len(self.a)}


def _out_name(c: np.ndarray) -> str:
    return {np.dtype(np.uint16): "bf16", np.dtype(np.float32): "fp32", np.dtype(np.float64): "fp64",
            np.dtype(np.int32): "int32"}[c.dtype]


RUNNERS = {"aibench": OwnKernelRunner, "blas": BlasRunner, "torch": TorchCpuRunner}
