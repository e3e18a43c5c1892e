"""Runs aibench's Hopper wgmma GEMM alone, in its own process, on a few shapes against a
float64 reference. A fault there (the kernel traps rather than hangs) must not take the
rest of the GPU check with it: scripts/gpu_check.sh falls back to the mma.sync kernel
when this exits non-zero."""

import sys

import cupy as cp
import numpy as np

from aibench import _cuda
from aibench.dtypes import decode

STORAGE = {"bf16": np.uint16, "fp16": np.float16}
worst = 0.0
for dtype in ("bf16", "fp16"):
    for m, n, k in [(256, 256, 256), (130, 264, 40), (1000, 776, 2056), (8, 8, 8)]:
        a = cp.empty((m, k), STORAGE[dtype])
        b = cp.empty((k, n), STORAGE[dtype])
        c = cp.full((m, n), 0x7FC0 if dtype == "bf16" else np.nan, STORAGE[dtype])
        _cuda.fill_uniform(0, a.data.ptr, a.size, dtype, 1)
        _cuda.fill_uniform(0, b.data.ptr, b.size, dtype, 2)
        op = _cuda.MmaGemm(0, m, n, k, dtype, a.data.ptr, b.data.ptr, c.data.ptr, variant="wgmma")
        op.run()
        ref = decode(a.get(), dtype) @ decode(b.get(), dtype)
        got = decode(c.get(), dtype)
        err = float(np.linalg.norm(got - ref) / np.linalg.norm(ref)) if np.isfinite(got).all() else np.inf
        worst = max(worst, err)
        print(f"wgmma {dtype} {m}x{n}x{k}: relative error {err:.2e}")
print(op.describe)
sys.exit(0 if worst < 2e-2 else 1)
