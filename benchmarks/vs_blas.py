"""Own fp32 / fp64 GEMM against numpy's BLAS on chosen shapes, on one core, from thread CPU time.

    python benchmarks/vs_blas.py 4096x2x1024,16x4096x4096,512x14336x4096 [fp32|fp64] [ROUNDS]
    AIBENCH_CPU_ISA=avx2 OPENBLAS_CORETYPE=Haswell python benchmarks/vs_blas.py 4096x8x1024

Both run on this thread (threads=1: the own kernel's `threads`, BLAS through threadpoolctl),
one after the other in every round, and each keeps its best round: FLOPs over the thread's
CPU time, so time the OS gave to other processes counts for neither. The ratio own/BLAS is
the figure to read; `aibench run --suite gemm` gives the node's figures on every core.
"""

from __future__ import annotations

import sys
import time

import numpy as np
from threadpoolctl import threadpool_limits

import kernels


def main(argv: list[str]) -> int:
    try:
        shapes = [tuple(int(x) for x in s.split("x")) for s in argv[0].split(",")]
        dtype = argv[1] if len(argv) > 1 else "fp32"
        rounds = int(argv[2]) if len(argv) > 2 else 6
        if dtype not in ("fp32", "fp64") or rounds < 1 or any(len(s) != 3 or min(s) < 1 for s in shapes):
            raise ValueError
    except (ValueError, IndexError):
        print("usage: vs_blas.py MxNxK[,MxNxK...] [fp32|fp64] [ROUNDS>0]", file=sys.stderr)
        return 2
    rng = np.random.default_rng(0)
    path = kernels.gemm_paths(dtype)[0]
    with threadpool_limits(1):
        for m, n, k in shapes:
            a = rng.uniform(-1, 1, (m, k)).astype(kernels.GEMM_IN[dtype])
            b = rng.uniform(-1, 1, (k, n)).astype(kernels.GEMM_IN[dtype])
            own_c, blas_c = kernels.gemm_output(m, n, dtype), kernels.gemm_output(m, n, dtype)
            calls = max(1, int(2e8 // (2 * m * n * k)))  # about 0.2 GFLOP per timing
            own = blas = float("inf")
            for _ in range(rounds):
                start = time.thread_time()
                for _ in range(calls):
                    kernels.gemm(a, b, own_c, path, threads=1)
                own = min(own, (time.thread_time() - start) / calls)
                start = time.thread_time()
                for _ in range(calls):
                    np.matmul(a, b, out=blas_c)
                blas = min(blas, (time.thread_time() - start) / calls)
            err = float(np.max(np.abs(own_c - blas_c)) / max(np.max(np.abs(blas_c)), 1e-30))
            flops = 2.0 * m * n * k
            print(f"{dtype} {path:7} {m}x{n}x{k}: own {flops / own / 1e9:7.1f}  BLAS {flops / blas / 1e9:7.1f} "
                  f"GFLOP/s  own/BLAS {blas / own:5.2f}  (max difference {err:.1e})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
