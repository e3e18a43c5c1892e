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
from ...dtypes import FORMATS, bf16_bits, decode, poison
from ...errors import SkipCase, UsageError
from ...fit import fits
from ...targets import torch_missing
from ...targets.cpu import case_threads, cpu_peak_tflops, import_torch, kernel_method, last_level_cache_bytes
from ..base import RunContext
from ..kernel import CoreOpRunner, PythonLoopRunner
from .common import GemmRunner, freivalds_temp_bytes

# Output (C) storage of the own kernel and blas; torch's bf16 output is bf16 (uint16 bits).
_NP_OUT_DTYPE = {"fp32": np.float32, "fp64": np.float64, "bf16": np.float32, "int8": np.int32}
_LOWP = ("bf16", "int8")  # dtypes the own kernel runs through _core.lowp_paths
_MAX_BUFFER_SETS = 64
# The largest m, n, k of the probe that estimates a slow peer's call. Not smaller: torch's
# bf16 matmul without AVX512_BF16 runs 2.9 GFLOP/s at 128^3 but 1.3 at 256^3 and 512^3
# and 0.33 at 2048^3 (Zen 3): below 512 a probe hides how slow the big calls are.
_PROBE_SIDE = 512
# bf16 operands are generated in chunks of this many values (float32, then bf16 bits), so
# that generation needs a bounded temporary instead of a float32 copy of the operand.
_GEN_CHUNK = 1 << 20
# Bytes per value alive while one chunk is converted: the float32 chunk (4) and
# bf16_bits' temporaries (uint32 intermediates and the uint16 result: 10, measured).
_BF16_CHUNK_TEMP = 4 + 10
_SAMPLES = 24  # rows and columns the validation samples (gemm/__init__.py, _sample_indices)


def set_bytes(params: dict[str, Any]) -> int:
    m, n, k = params["m"], params["n"], params["k"]
    dtype = params["dtype"]
    return ((m * k + k * n) * FORMATS[dtype].itemsize
            + m * n * np.dtype(_NP_OUT_DTYPE[dtype]).itemsize)


def buffer_sets(params: dict[str, Any]) -> int:
    """How many (A, B, C) sets to rotate through so that consecutive GEMMs do not find
    their operands in the last-level cache: enough to span twice the LLC."""
    one = set_bytes(params)
    llc = last_level_cache_bytes()
    if one >= llc:
        return 1
    return min(_MAX_BUFFER_SETS, math.ceil(2 * llc / one))


def memory_needed(params: dict[str, Any]) -> int:
    """Peak bytes a case makes this process hold, whichever CPU impl runs it: every
    buffer set (A, B, C; several for cache-sized shapes), the own kernel's packing scratch
    (grow-only, kept across calls), and the larger of the temporaries operand generation
    makes (before C exists) and those the validation makes (after)."""
    m, n, k, dtype = params["m"], params["n"], params["k"], params["dtype"]
    return (buffer_sets(params) * set_bytes(params) + kernel_scratch_bytes(params)
            + max(generation_temp_bytes(dtype, max(m * k, k * n)), validation_temp_bytes(params))
            + INTERPRETER_SLACK_BYTES)


# What the interpreter itself allocates during a case besides the arrays (a module imported
# on first use, thread-pool bookkeeping): tens of KiB seen; counted so that tiny cases'
# guards hold too.
INTERPRETER_SLACK_BYTES = 1 << 20


def generation_temp_bytes(dtype: str, elements: int) -> int:
    """Largest temporary uniform_values makes for an array of `elements` values, on top of
    the array itself: fp32 and fp64 are generated in their own storage; bf16 through
    float32 chunks of _GEN_CHUNK values (the float32 chunk plus bf16_bits' uint32
    intermediates, _BF16_CHUNK_TEMP bytes per value). int8 operands need none."""
    if dtype != "bf16":
        return 0
    return _BF16_CHUNK_TEMP * min(elements, _GEN_CHUNK)


def validation_temp_bytes(params: dict[str, Any]) -> int:
    """What GemmRunner.validate allocates: the sampled rows of A and columns of B copied out
    (stored format), decoded (bf16: through uint32/float32) and held as float64, the same
    for the sampled block of C, and the float64 reference with its error terms; all still
    held while the Freivalds check runs (common.freivalds_temp_bytes)."""
    m, n, k, dtype = params["m"], params["n"], params["k"], params["dtype"]
    rows, cols = min(m, _SAMPLES), min(n, _SAMPLES)
    in_item = FORMATS[dtype].itemsize
    out_item = np.dtype(_NP_OUT_DTYPE[dtype]).itemsize
    # per value: the copy, the uint32 bits of a bf16 decode (4) and the float64 result (8)
    sampled = (rows * k + k * cols) * (in_item + 4 + 8)
    block = rows * cols * (out_item + 4 + 8 + 4 * 8)  # C block + ref, |C - ref|, ref * ref
    return sampled + block + freivalds_temp_bytes(m, n, k)


def kernel_scratch_bytes(params: dict[str, Any]) -> int:
    """The own kernel's packing buffer (gemm_driver.cpp / gemm_lowp.cpp): the shared
    B panel (kc x nc) plus per thread an A block (mc x kc) and an edge tile (mr x nr), in
    the kernel's element size (lowp: 32-bit lanes of 2 bf16 / 4 int8 values, so the same
    bytes per value as the input). 0 where the own kernel does not run (no lowp path)."""
    m, n, k, dtype = params["m"], params["n"], params["k"], params["dtype"]
    try:
        if dtype in _LOWP:
            blk = _core.gemm_blocking(_core.lowp_paths(dtype)[0], dtype)
        else:
            blk = _core.gemm_blocking(_core.best_isa(), dtype)
        threads = _core.default_threads()
    except (AttributeError, ValueError, RuntimeError):  # an extension without the query
        return 0
    item = FORMATS[dtype].itemsize
    mr, nr = blk["mr"], blk["nr"]
    kc = min(blk["kc"], k) + 4  # lowp: k rounded up to whole 32-bit groups
    if dtype in _LOWP:
        item = max(item, 4)  # the widening paths pack 32-bit lanes (fp32, int16 pairs)
    nc = -(-min(blk["nc"], n) // nr) * nr
    # The largest row block: about MC rows in whole MR-row panels (at most MC + 2 MR).
    mc = min(blk["mc"] + 2 * mr, -(-m // mr) * mr)
    lane_pad = 64 + (4 * nr if dtype == "int8" else 0)  # alignment; int8's per-panel corrections
    b_panel = kc * nc * item + (nc // nr) * lane_pad
    per_thread = mc * kc * item + mr * nr * max(item, 4) + 128  # A block, edge tile, alignment
    return b_panel + threads * per_thread


def check_fits_in_memory(params: dict[str, Any]) -> None:
    """Refuse, before allocating, a case whose peak memory (memory_needed) does not fit in
    available memory."""
    reason = fits(memory_needed(params), psutil.virtual_memory().available,
                  f"gemm {params['m']}x{params['n']}x{params['k']} {params['dtype']}",
                  held=f"A, B and C ({buffer_sets(params)} buffer set(s), with packing and validation temporaries)")
    if reason:
        raise UsageError(reason)


def _random_operand(rng: np.random.Generator, shape: tuple[int, int], dtype: str, k: int) -> np.ndarray:
    """Uniform in [-1, 1) for float types (bf16: rounded to bf16, as bits); for int8 the
    full range [-128, 127], narrowed to [-8, 8] where 128 * 128 * k could leave int32,
    so that the int32 sum is always exact. Made in the operand's own storage (see
    uniform_values), which is what the memory guard counts."""
    if dtype == "int8":
        lo, hi = (-128, 127) if 128 * 128 * k < 2**31 else (-8, 8)
        return rng.integers(lo, hi, shape, dtype=np.int8, endpoint=True)
    return uniform_values(rng, shape, dtype)


def uniform_values(rng: np.random.Generator, shape: tuple[int, ...], dtype: str) -> np.ndarray:
    """Uniform in [-1, 1) as fp64, fp32 or bf16 bits (rounded to nearest even), made in
    the array's own storage: never a float64 copy of the whole array (bf16 goes through
    float32 chunks). The memory guards count what this makes (generation_temp_bytes)."""
    if dtype == "fp64":
        return rng.uniform(-1, 1, shape)
    if dtype == "fp32":
        return _uniform_float32(rng, shape)
    if dtype != "bf16":
        raise ValueError(f"uniform_values: dtype must be fp64, fp32 or bf16, got {dtype!r}")
    out = np.empty(shape, dtype=np.uint16)
    flat = out.reshape(-1)  # a view: out is contiguous
    for start in range(0, flat.size, _GEN_CHUNK):
        stop = min(flat.size, start + _GEN_CHUNK)
        flat[start:stop] = bf16_bits(_uniform_float32(rng, (stop - start,)))
    return out


def _uniform_float32(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Uniform float32 in [-1, 1): 2u - 1 for u on the float32 grid of [0, 1), which is
    exact in float32 (every 2u - 1 is a multiple of 2**-23 below 1 in magnitude)."""
    x = rng.random(shape, dtype=np.float32)
    x *= 2
    x -= 1
    return x


class _NumpyOperands(GemmRunner):
    """Random A, B (uniform in [-1, 1), never zeros; int8: random integers) and C,
    rotated among buffer sets."""

    out_dtype = _NP_OUT_DTYPE  # dtype -> numpy storage of C

    def __init__(self, params: dict[str, Any], ctx: RunContext):
        self.params, self.ctx = params, ctx
        self.dtype = params["dtype"]
        # The same threads for every impl of the case (targets/cpu.py case_threads).
        self.threads, self.threads_rule = case_threads()
        m, n, k = params["m"], params["n"], params["k"]
        rng = np.random.default_rng(ctx.seed)
        sets = buffer_sets(params)
        self.a = [_random_operand(rng, (m, k), self.dtype, k) for _ in range(sets)]
        self.b = [_random_operand(rng, (k, n), self.dtype, k) for _ in range(sets)]
        self.c = [np.empty((m, n), dtype=self.out_dtype[self.dtype]) for _ in range(sets)]

    def poison_output(self) -> None:
        poison(*self.output())

    def rows(self, which, start, stop):
        if which == "c":
            return decode(self.c[0][start:stop], _out_name(self.c[0]))
        return decode((self.a if which == "a" else self.b)[0][start:stop], self.dtype)

    def output(self):
        return self.c[0], _out_name(self.c[0])

    def sample(self, rows, cols):
        return (decode(self.a[0][rows, :], self.dtype), decode(self.b[0][:, cols], self.dtype),
                decode(self.c[0][np.ix_(rows, cols)], _out_name(self.c[0])))

    def validation_dtype(self) -> str:
        # bf16 with an fp32 output: the output is rounded to fp32, not to bf16.
        if self.dtype == "bf16" and self.c[0].dtype == np.float32:
            return "bf16-fp32out"
        return self.dtype

    def peak(self) -> dict | None:
        return cpu_peak_tflops(self.dtype)

    def parity_detail(self) -> dict:
        """How the case was timed, the same keys for every impl: threads and their rule,
        the timed loop and (Python loops) its measured overhead per call."""
        return {"threads": self.threads, "threads_rule": self.threads_rule, "timing": self.timing_detail()}

    def tiny(self):
        """This impl on a 1 x 1 x 1 GEMM of the same dtype (its timed loop's overhead)."""
        return type(self)({**self.params, "m": 1, "n": 1, "k": 1}, self.ctx)

    def close(self) -> None:
        self.a = self.b = self.c = []


class OwnKernelRunner(CoreOpRunner, _NumpyOperands):
    """aibench's C++ kernel; its timing loop is C++ (steady clock)."""
    name = "aibench"
    target_kinds = ("cpu",)
    description = ("aibench's C++ kernel: packed panels, cache blocking, AVX-512/AVX2 micro-kernels, OpenMP, "
                   "GEMV kernels for one row or column; bf16 (fp32 output) on AVX512_BF16 or widened to fp32, "
                   "int8 (int32 output) on AVX512_VNNI or widened to int16 (VPMADDWD)")

    def __init__(self, params, ctx):
        super().__init__(params, ctx)
        # The best path this CPU runs under AIBENCH_CPU_ISA.
        self.op = _core.Gemm(self.a, self.b, self.c, self.dtype, threads=self.threads)
        self.isa = self.op.describe["isa"]

    def peak(self) -> dict | None:
        return cpu_peak_tflops(self.dtype, self.isa)  # the peak of the instructions this path uses

    def detail(self) -> dict:
        d = self.op.describe
        return {"isa": self.isa, "method": kernel_method(self.dtype, self.isa), **self.parity_detail(),
                "buffer_sets": d["buffer_sets"], "output": _out_name(self.c[0]), "blocking": d["blocking"]}

    def close(self) -> None:
        self.op = None
        super().close()


class BlasRunner(PythonLoopRunner, _NumpyOperands):
    """numpy.matmul, i.e. the BLAS numpy was built with: what the user's libraries do.
    BLAS has no loop API, so the loop is Python and its overhead is recorded."""
    name = "blas"
    target_kinds = ("cpu",)
    description = "numpy.matmul with the BLAS numpy links (OpenBLAS in PyPI wheels)"

    def __init__(self, params, ctx):
        if params["dtype"] in _LOWP:
            # numpy.matmul on int8 is numpy's own loop, and numpy has no bf16 type.
            raise SkipCase(f"numpy has no {params['dtype']} BLAS GEMM")
        super().__init__(params, ctx)
        self.blas_threads = BlasThreads(self.threads)

    def time(self, number: int) -> float:
        a, b, c, sets = self.a, self.b, self.c, len(self.a)
        start = time.perf_counter()
        for i in range(number):
            np.matmul(a[i % sets], b[i % sets], out=c[i % sets])
        return time.perf_counter() - start

    def run(self) -> None:
        np.matmul(self.a[0], self.b[0], out=self.c[0])

    def detail(self) -> dict:
        from threadpoolctl import threadpool_info

        blas = [{k: i.get(k) for k in ("internal_api", "version", "num_threads", "architecture")}
                for i in threadpool_info() if i.get("user_api") == "blas"]
        return {"numpy": np.__version__, "blas": blas, "buffer_sets": len(self.a), **self.parity_detail()}

    def close(self) -> None:
        if getattr(self, "blas_threads", None) is not None:
            self.blas_threads.restore()
            self.blas_threads = None
        super().close()


class BlasThreads:
    """The BLAS libraries loaded in this process held to `threads` (threadpoolctl) while
    a case's impls are measured; restore() gives back what they had."""

    def __init__(self, threads: int):
        from threadpoolctl import threadpool_limits

        self._limits = threadpool_limits(limits=threads, user_api="blas")

    def restore(self) -> None:
        self._limits.restore_original_limits()


class TorchCpuRunner(PythonLoopRunner, _NumpyOperands):
    name = "torch"
    target_kinds = ("cpu",)
    description = ("torch.matmul on CPU (oneDNN/MKL) for fp32, fp64 and bf16 (bf16 output); "
                   "torch._int_mm for int8 (int32 output)")
    unavailable = staticmethod(torch_missing)
    # torch.matmul on bfloat16 tensors returns bfloat16: C is held as bf16 bits.
    out_dtype = {**_NP_OUT_DTYPE, "bf16": np.uint16}

    def __init__(self, params, ctx):
        super().__init__(params, ctx)
        torch = import_torch()
        torch.set_num_threads(self.threads)  # the case's threads, as every impl

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
        self.checked = False

    def estimated_call_s(self) -> float | None:
        """From one call of the same op and dtype on at most _PROBE_SIDE per side, scaled
        by the work. Rough (a library's efficiency changes with the shape), but it keeps a
        call of minutes from starting: 4096^3 bf16 on Zen 3 is estimated at about 100 s
        (and would take 450 s)."""
        p = self.params
        m, n, k = (min(p[d], _PROBE_SIDE) for d in ("m", "n", "k"))
        full = p["m"] * p["n"] * p["k"]
        if full == m * n * k:
            return None  # the case is no bigger than the probe
        probe_a = self.ta[0][:m, :k].contiguous()
        probe_b = self.tb[0][:k, :n].contiguous()
        probe_c = self.tc[0].new_empty((m, n))
        try:
            self.mm(probe_a, probe_b, out=probe_c)  # warm-up: first-call set-up
            start = time.perf_counter()
            self.mm(probe_a, probe_b, out=probe_c)
        except RuntimeError:
            return None  # the first timed call says why (timer)
        return (time.perf_counter() - start) * full / (m * n * k)

    def time(self, number: int) -> float:
        mm, a, b, c, sets = self.mm, self.ta, self.tb, self.tc, len(self.ta)
        start = time.perf_counter()
        if not self.checked:
            # torch states its own shape limits (e.g. _int_mm's on some builds): skip on
            # them. Checked on the first timed call, not by a call of its own: one call of
            # a slow dtype (bf16 without AVX512_BF16) can take a minute.
            try:
                mm(a[0], b[0], out=c[0])
            except RuntimeError as e:
                p = self.params
                raise SkipCase(f"torch {mm.__name__} refuses {p['m']}x{p['n']}x{p['k']} {self.dtype} on CPU: "
                               f"{str(e).splitlines()[0]}") from None
            self.checked = True
            number -= 1
        for i in range(number):
            mm(a[i % sets], b[i % sets], out=c[i % sets])
        return time.perf_counter() - start

    def run(self) -> None:
        self.mm(self.ta[0], self.tb[0], out=self.tc[0])

    def detail(self) -> dict:
        return {"torch": self.torch.__version__, "torch_threads": self.torch.get_num_threads(),
                "op": f"torch.{self.mm.__name__}", "output": _out_name(self.c[0]), "buffer_sets": len(self.a),
                **self.parity_detail()}



def _out_name(c: np.ndarray) -> str:
    return {np.dtype(np.uint16): "bf16", np.dtype(np.float32): "fp32", np.dtype(np.float64): "fp64",
            np.dtype(np.int32): "int32"}[c.dtype]


IMPLS = (OwnKernelRunner, BlasRunner, TorchCpuRunner)
