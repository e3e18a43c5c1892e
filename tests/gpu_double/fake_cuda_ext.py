"""A fake `aibench._cuda` (csrc/cuda/module.cpp) on the simulated GPU: the same functions,
classes, argument checks and error types (ValueError for bad arguments, as pybind11 turns
std::invalid_argument; RuntimeError (CudaError) for CUDA failures), computing with numpy.

GEMMs and attention compute in float64 from the stored (decoded) inputs and round once
to the output format: right code validates, wrong code (a wrong pointer, layout, shape or
dtype) does not. time() follows time_op in csrc/cuda/timing.cpp: with a flush buffer, a
memset of it before EVERY launch and an event pair around the launch alone; without,
one event pair around the back-to-back launches; the seconds are the device clock's.
"""

from __future__ import annotations

import math
import types

import numpy as np

from aibench.dtypes import bf16_bits, decode

from .device import CudaRuntimeError, SimulatedGpus

_STORAGE = {"fp64": np.float64, "fp32": np.float32, "tf32": np.float32, "bf16": np.uint16, "fp16": np.float16,
            "fp8": np.uint8, "int8": np.int8}
_OUTPUT = {"fp64": ("fp64", np.float64), "fp32": ("fp32", np.float32), "tf32": ("fp32", np.float32),
           "bf16": ("bf16", np.uint16), "fp16": ("fp16", np.float16), "fp8": ("bf16", np.uint16),
           "int8": ("int32", np.int32)}


def _parse_dtype(name: str) -> str:
    if name not in _STORAGE:
        raise ValueError(f"unknown dtype '{name}' (expected fp64, fp32, tf32, bf16, fp16, fp8 or int8)")
    return name


def encode(values: np.ndarray, fmt: str) -> np.ndarray:
    """float64 values rounded to nearest into the storage of `fmt`."""
    if fmt == "bf16":
        return bf16_bits(values.astype(np.float32))
    if fmt == "fp8":
        import ml_dtypes

        return values.astype(ml_dtypes.float8_e4m3fn).view(np.uint8)
    if fmt == "int32":
        return np.rint(values).astype(np.int32)
    if fmt == "tf32":
        from .fake_cupy import _round_tf32

        return _round_tf32(values.astype(np.float32))
    return values.astype(_STORAGE.get(fmt, np.float64) if fmt != "int8" else np.int8)


class _Op:
    """What every op shares: a device, run() and time() on the device clock."""

    kind = ""

    def __init__(self, gpus: SimulatedGpus, device: int):
        self.gpus, self.device = gpus, device

    _computed_at = -1  # gpus.writes right after this op's last computation

    def _launch(self) -> None:
        if self._computed_at != self.gpus.writes:  # someone wrote device memory since
            self.compute()
            self.gpus.wrote()
            self._computed_at = self.gpus.writes
        self.gpus.kernel(self.kind, type(self).__name__, self.device)

    def run(self) -> None:
        self._launch()
        self.gpus.synchronize("run_op")

    def time(self, number: int, flush_ptr: int = 0, flush_bytes: int = 0) -> float:
        if number < 1:
            raise ValueError(f"number must be >= 1, got {number}")
        if flush_bytes > 0 and flush_ptr == 0:
            raise ValueError("flush_bytes > 0 needs a flush_ptr")
        gpus = self.gpus
        if flush_bytes == 0:
            start = gpus.clock_ns
            for _ in range(number):
                self._launch()
            seconds = (gpus.clock_ns - start) / 1e9
        else:
            seconds = 0.0
            for i in range(number):
                gpus.view(flush_ptr, flush_bytes, np.uint8)[...] = i % 251 + 1  # cudaMemsetAsync
                gpus.kernel("flush", f"{flush_bytes} bytes", self.device)
                start = gpus.clock_ns
                self._launch()
                seconds += (gpus.clock_ns - start) / 1e9  # float ms per event pair in CUDA
        gpus.synchronize("time_op")
        return seconds


def _check_device(gpus: SimulatedGpus, device: int) -> None:
    if device < 0 or device >= len(gpus.specs):
        raise ValueError(f"device {device} out of range: {len(gpus.specs)} CUDA device(s)")


class _Gemm(_Op):
    kind = "gemm"
    nk = False

    def __init__(self, gpus, device, m, n, k, dtype, a, b, c):
        super().__init__(gpus, device)
        self.m, self.n, self.k, self.dtype, self.ptrs = m, n, k, dtype, (a, b, c)

    def compute(self) -> None:
        m, n, k, dt = self.m, self.n, self.k, self.dtype
        a_ptr, b_ptr, c_ptr = self.ptrs
        fmt = "fp32" if dt == "tf32" else dt
        a = decode(self.gpus.view(a_ptr, m * k, _STORAGE[dt]).reshape(m, k), fmt).astype(np.float64)
        b = decode(self.gpus.view(b_ptr, k * n, _STORAGE[dt]).reshape((n, k) if self.nk else (k, n)), fmt)
        b = b.astype(np.float64).T if self.nk else b.astype(np.float64)
        out_fmt, out_storage = _OUTPUT[dt]
        self.gpus.view(c_ptr, m * n, out_storage)[...] = encode(a @ b, out_fmt).reshape(-1)


class CublasLtGemm(_Gemm):
    def __init__(self, gpus, device, m, n, k, dtype, a_ptr, b_ptr, c_ptr, b_layout="kn"):
        dtype = _parse_dtype(dtype)
        shape = f"{dtype} m={m} n={n} k={k} b_layout={b_layout}"
        if min(m, n, k) < 1 or max(m, n, k) > 2**31 - 1:
            raise ValueError(f"CublasLtGemm needs 1 <= m, n, k <= 2^31-1, got {shape}")
        if b_layout not in ("kn", "nk"):
            raise ValueError(f"b_layout must be 'kn' or 'nk', got '{b_layout}'")
        if not (a_ptr and b_ptr and c_ptr):
            raise ValueError("CublasLtGemm: null pointer")
        if dtype in ("fp8", "int8") and b_layout != "nk":
            raise ValueError(f"{dtype} GEMM needs b_layout='nk' (cuBLASLt runs it only in the TN layout)")
        if dtype == "fp8" and (k % 16 or n % 16):
            raise ValueError(f"fp8 GEMM needs k and n multiples of 16, got {shape}")
        if dtype == "int8" and (k % 4 or n % 4):
            raise ValueError(f"int8 GEMM needs k and n multiples of 4, got {shape}")
        _check_device(gpus, device)
        spec = gpus.specs[device]
        cc = spec.major * 10 + spec.minor
        if dtype == "fp8" and cc < 89:
            raise CudaRuntimeError(f"fp8 GEMM needs compute capability >= 8.9, device {device} has "
                                   f"{spec.major}.{spec.minor}")
        super().__init__(gpus, device, m, n, k, dtype, a_ptr, b_ptr, c_ptr)
        self.nk = b_layout == "nk"
        self.algo_info = "algo 0 (double): tile 128x256, stages 4, workspace 0 B"


class MmaGemm(_Gemm):
    def __init__(self, gpus, device, m, n, k, dtype, a_ptr, b_ptr, c_ptr, variant="auto"):
        if variant not in ("auto", "mma_sync", "wgmma"):
            raise ValueError(f"MmaGemm variant must be 'auto', 'mma_sync' or 'wgmma', got '{variant}'")
        if dtype not in ("bf16", "fp16"):
            raise ValueError(f"MmaGemm supports dtype 'bf16' or 'fp16', got '{dtype}'")
        if min(m, n, k) < 1 or max(m, n, k) > 2**30:
            raise ValueError(f"MmaGemm needs 1 <= m, n, k <= 2^30, got m={m}, n={n}, k={k}")
        if not (a_ptr and b_ptr and c_ptr):
            raise ValueError("MmaGemm: null pointer")
        if a_ptr % 2 or b_ptr % 2 or c_ptr % 2:
            raise ValueError("MmaGemm: pointers must be 2-byte aligned")
        _check_device(gpus, device)
        super().__init__(gpus, device, m, n, k, dtype, a_ptr, b_ptr, c_ptr)
        self.describe = f"double of aibench's tensor-core GEMM ({dtype}); variant {variant}"


class FlashAttention(_Op):
    kind = "attention"

    def __init__(self, gpus, device, batch, heads, kv_heads, seqlen_q, seqlen_k, head_dim, dtype, causal, scale,
                 q_ptr, k_ptr, v_ptr, o_ptr):
        if dtype not in ("bf16", "fp16"):
            raise ValueError(f"FlashAttention supports dtype 'bf16' or 'fp16', got '{dtype}'")
        if head_dim not in (64, 128):
            raise ValueError(f"FlashAttention supports head_dim 64 or 128, got {head_dim}")
        if kv_heads < 1 or heads % kv_heads:
            raise ValueError(f"FlashAttention needs kv_heads >= 1 dividing heads, got heads={heads}, "
                             f"kv_heads={kv_heads}")
        if not (math.isfinite(scale) and scale > 0):
            raise ValueError(f"FlashAttention needs a finite scale > 0, got {scale}")
        if not (q_ptr and k_ptr and v_ptr and o_ptr):
            raise ValueError("FlashAttention: null pointer")
        if any(p % 16 for p in (q_ptr, k_ptr, v_ptr, o_ptr)):
            raise ValueError("FlashAttention: q, k, v and o must be 16-byte aligned")
        _check_device(gpus, device)
        super().__init__(gpus, device)
        self.shape = (batch, heads, kv_heads, seqlen_q, seqlen_k, head_dim)
        self.dtype, self.causal, self.scale = dtype, causal, scale
        self.ptrs = (q_ptr, k_ptr, v_ptr, o_ptr)
        self.describe = f"double of aibench's flash attention ({dtype}, head dim {head_dim})"

    def compute(self) -> None:
        b, h, hk, sq, sk, d = self.shape
        storage = _STORAGE[self.dtype]
        q_ptr, k_ptr, v_ptr, o_ptr = self.ptrs
        q = decode(self.gpus.view(q_ptr, b * h * sq * d, storage), self.dtype).reshape(b, h, sq, d)
        k = decode(self.gpus.view(k_ptr, b * hk * sk * d, storage), self.dtype).reshape(b, hk, sk, d)
        v = decode(self.gpus.view(v_ptr, b * hk * sk * d, storage), self.dtype).reshape(b, hk, sk, d)
        k, v = np.repeat(k, h // hk, axis=1), np.repeat(v, h // hk, axis=1)
        s = np.matmul(q, np.swapaxes(k, -1, -2)) * self.scale
        visible = np.ones((sq, sk), dtype=bool)
        if self.causal:  # bottom-right aligned: query i sees keys j <= i + sk - sq
            visible = np.arange(sk)[None, :] <= np.arange(sq)[:, None] + (sk - sq)
        s = np.where(visible, s, -np.inf)
        top = s.max(axis=-1, keepdims=True)
        p = np.where(visible, np.exp(s - np.where(np.isfinite(top), top, 0.0)), 0.0)
        total = p.sum(axis=-1, keepdims=True)
        o = (p / np.where(total > 0, total, 1.0)) @ v  # rows that see no key: 0
        self.gpus.view(o_ptr, o.size, storage)[...] = encode(o.reshape(-1), self.dtype)


def fill_uniform(gpus: SimulatedGpus, device, ptr, count, dtype, seed, lo=-1.0, hi=1.0):
    dtype = _parse_dtype(dtype)
    if not (math.isfinite(lo) and math.isfinite(hi)) or lo > hi:
        raise ValueError("fill_uniform needs finite lo <= hi")
    limit = {"fp8": 448.0, "fp16": 65504.0}.get(dtype, 3.0e38 if dtype in ("fp32", "tf32", "bf16") else 1e300)
    if abs(lo) > limit or abs(hi) > limit:
        raise ValueError(f"fill_uniform range [lo, hi] exceeds the finite range of {dtype}")
    if count == 0:
        return
    if ptr == 0:
        raise ValueError("fill_uniform: null pointer")
    if ptr % np.dtype(_STORAGE[dtype]).itemsize:
        raise ValueError(f"fill_uniform: pointer not aligned for {dtype}")
    _check_device(gpus, device)
    uniform = np.random.default_rng(seed).random(count)
    if dtype == "int8":
        ilo, ihi = math.ceil(lo), math.floor(hi)
        if ilo > ihi or ilo < -128 or ihi > 127:
            raise ValueError("fill_uniform int8 needs an integer in [lo, hi] and -128 <= lo <= hi <= 127")
        values = np.minimum(ilo + np.floor(uniform * (ihi - ilo + 1)), ihi).astype(np.int8)
    else:
        values = encode(lo + (hi - lo) * uniform, dtype)
    gpus.view(ptr, count, _STORAGE[dtype])[...] = values
    gpus.wrote()
    gpus.kernel("fill", f"fill_uniform {dtype} x{count}", device)
    gpus.synchronize("fill_uniform")


def build(gpus: SimulatedGpus) -> types.ModuleType:
    from .fake_cupy import _module

    m = _module("aibench._cuda")
    m.CudaError = CudaRuntimeError
    m.device_count = lambda: len(gpus.specs)
    m.cuda_unavailable_reason = lambda: None if gpus.specs else "no CUDA device found"
    m.runtime_version = lambda: 12080
    m.driver_version = lambda: 12080
    m.cublaslt_version = lambda: 120805
    m.build_info = lambda: {"cuda_compiler": "double", "architectures": "90a", "cudart": "static",
                            "cudart_build_version": 12080, "cublaslt_header_version": 120805,
                            "cublaslt_source": "double"}

    def device_properties(device):
        if not gpus.specs:
            raise CudaRuntimeError("no CUDA device found (in cudaGetDeviceCount)")
        _check_device(gpus, device)
        s = gpus.specs[device]
        return {"name": s.name, "major": s.major, "minor": s.minor, "multiprocessors": s.multiprocessors,
                "l2_cache_bytes": s.l2_cache_bytes, "total_memory_bytes": s.total_memory_bytes,
                "memory_bus_width": 6144, "pci_bus_id": s.pci_bus_id, "shared_memory_per_block_optin": 232448,
                "clock_khz": s.sm_clock_mhz * 1000, "memory_clock_khz": s.mem_clock_mhz * 1000}

    m.device_properties = device_properties
    m.fill_uniform = lambda *a, **kw: fill_uniform(gpus, *a, **kw)
    m.CublasLtGemm = lambda *a, **kw: CublasLtGemm(gpus, *a, **kw)
    m.MmaGemm = lambda *a, **kw: MmaGemm(gpus, *a, **kw)
    m.FlashAttention = lambda *a, **kw: FlashAttention(gpus, *a, **kw)
    return m
