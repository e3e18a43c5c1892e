"""The one place the micro-benchmarks call aibench's C++ core (`aibench._core`).

Everything that knows the bindings' shape lives here: argument order, how a dtype is stored
(bf16 as uint16 bits with an fp32 output, int8 with an int32 output), which query lists the
paths of a dtype. When the bindings change, only this file changes.
"""

from __future__ import annotations

import os

import numpy as np

from aibench import _core

GEMM_DTYPES = ("fp32", "fp64", "bf16", "int8")
ATTENTION_DTYPES = ("fp32", "bf16")

# dtype -> numpy storage of A and B, and of C (the own kernel: bf16 -> fp32, int8 -> int32)
GEMM_IN = {"fp32": np.float32, "fp64": np.float64, "bf16": np.uint16, "int8": np.int8}
GEMM_OUT = {"fp32": np.float32, "fp64": np.float64, "bf16": np.float32, "int8": np.int32}
_LOWP = ("bf16", "int8")


def gemm_paths(dtype: str) -> list[str]:
    """Paths of the own GEMM this CPU runs for `dtype` (under AIBENCH_CPU_ISA), best first."""
    if dtype in _LOWP:
        return list(_core.lowp_paths(dtype))  # best first already
    return list(reversed(_core.isa_paths()))  # isa_paths(): slowest first


def attention_paths(dtype: str) -> list[str]:
    """Paths of the own attention for `dtype` ('fp32' or 'bf16'), best first."""
    return list(reversed(_core.attention_paths(dtype)))


def gemm_output(m: int, n: int, dtype: str) -> np.ndarray:
    return np.empty((m, n), dtype=GEMM_OUT[dtype])


def gemm(a: np.ndarray, b: np.ndarray, c: np.ndarray, isa: str, threads: int = 0) -> np.ndarray:
    """c[:] = a @ b on one path of gemm_paths(dtype) (threads=0: all cores); returns c."""
    _core.gemm(a, b, c, isa, threads)
    return c


def attention(q: np.ndarray, k: np.ndarray, v: np.ndarray, o: np.ndarray, causal: bool, scale: float,
              isa: str) -> np.ndarray:
    """o[:] = softmax(q k^T * scale [+ bottom-right causal mask]) v; q, o (B, H, Sq, D),
    k, v (B, Hkv, Sk, D), float32 or bf16 bits (uint16). Returns o."""
    _core.attention(q, k, v, o, causal, scale, isa)
    return o


def bf16_dot_over_fma() -> dict:
    """VDPBF16PS FLOP rate over the fp32 FMA's on one core ({dot_gflops, fma_gflops, ratio,
    native_first_from}; zeros without AVX512_BF16): what ranks the bf16 paths."""
    return dict(_core.bf16_dot_over_fma())


def describe() -> dict:
    """What the saved runs record about the kernels (machine_info['aibench'])."""
    return {
        "isa_cap": os.environ.get("AIBENCH_CPU_ISA") or None,
        "isa_paths": list(_core.isa_paths()),
        "lowp_paths": {d: list(_core.lowp_paths(d)) for d in _LOWP},
        "attention_paths": {d: list(_core.attention_paths(d)) for d in ATTENTION_DTYPES},
        "threads": int(_core.default_threads()),
    }
