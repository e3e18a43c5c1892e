"""GEMM on the cpu target: aibench's own kernel, numpy's BLAS, and torch when installed."""

from __future__ import annotations

import importlib.util
import math
import time
from typing import Any

import numpy as np
import psutil

from ... import _core
from ...errors import UsageError
from ...targets.cpu import cpu_peak_tflops, last_level_cache_bytes
from ..base import RunContext
from .common import GemmRunner

_NP_DTYPE = {"fp32": np.float32, "fp64": np.float64}
_MAX_BUFFER_SETS = 64


def _torch_missing() -> str | None:
    if importlib.util.find_spec("torch") is None:
        return "PyTorch is not installed (pip install 'aibench[torch]')"
    return None


def set_bytes(params: dict[str, Any]) -> int:
    m, n, k = params["m"], params["n"], params["k"]
    return (m * k + k * n + m * n) * np.dtype(_NP_DTYPE[params["dtype"]]).itemsize


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


class _NumpyOperands(GemmRunner):
    """Random A, B (uniform in [-1, 1), never zeros) and C, rotated among buffer sets."""

    def __init__(self, params: dict[str, Any], ctx: RunContext):
        self.params = params
        self.dtype = params["dtype"]
        m, n, k = params["m"], params["n"], params["k"]
        rng = np.random.default_rng(ctx.seed)
        t = _NP_DTYPE[self.dtype]
        sets = buffer_sets(params)
        self.a = [rng.uniform(-1, 1, (m, k)).astype(t) for _ in range(sets)]
        self.b = [rng.uniform(-1, 1, (k, n)).astype(t) for _ in range(sets)]
        self.c = [np.empty((m, n), dtype=t) for _ in range(sets)]

    def poison_output(self) -> None:
        self.c[0].fill(np.nan)

    def sample(self, rows, cols):
        return (self.a[0][rows, :].astype(np.float64), self.b[0][:, cols].astype(np.float64),
                self.c[0][np.ix_(rows, cols)].astype(np.float64))

    def validation_dtype(self) -> str:
        return self.dtype

    def peak(self) -> dict | None:
        return cpu_peak_tflops(self.dtype)

    def close(self) -> None:
        self.a = self.b = self.c = []


class OwnKernelRunner(_NumpyOperands):
    """aibench's C++ kernel; its timing loop is C++ (steady clock)."""

    description = "aibench's C++ kernel: packed panels, cache blocking, AVX-512/AVX2 micro-kernels, OpenMP"
    unavailable = staticmethod(lambda target: None)

    def __init__(self, params, ctx):
        super().__init__(params, ctx)
        self.isa = _core.best_isa()

    def timer(self, number: int) -> float:
        return _core.time_gemm(self.a, self.b, self.c, number, self.isa)

    def run_once(self) -> None:
        _core.gemm(self.a[0], self.b[0], self.c[0], self.isa)

    def detail(self) -> dict:
        return {"isa": self.isa, "buffer_sets": len(self.a),
                "blocking": _core.gemm_blocking(self.isa, self.dtype)}


class BlasRunner(_NumpyOperands):
    """numpy.matmul, i.e. the BLAS numpy was built with: what the user's libraries do."""

    description = "numpy.matmul with the BLAS numpy links (OpenBLAS in PyPI wheels)"
    unavailable = staticmethod(lambda target: None)

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
    description = "torch.matmul on CPU (oneDNN/MKL)"
    unavailable = staticmethod(lambda target: _torch_missing())

    def __init__(self, params, ctx):
        super().__init__(params, ctx)
        import torch

        self.torch = torch
        self.ta = [torch.from_numpy(x) for x in self.a]
        self.tb = [torch.from_numpy(x) for x in self.b]
        self.tc = [torch.from_numpy(x) for x in self.c]

    def timer(self, number: int) -> float:
        mm, a, b, c, sets = self.torch.matmul, self.ta, self.tb, self.tc, len(self.ta)
        start = time.perf_counter()
        for i in range(number):
            mm(a[i % sets], b[i % sets], out=c[i % sets])
        return time.perf_counter() - start

    def run_once(self) -> None:
        self.torch.matmul(self.ta[0], self.tb[0], out=self.tc[0])

    def detail(self) -> dict:
        return {"torch": self.torch.__version__, "threads": self.torch.get_num_threads(),
                "buffer_sets": len(self.a)}


RUNNERS = {"aibench": OwnKernelRunner, "blas": BlasRunner, "torch": TorchCpuRunner}
