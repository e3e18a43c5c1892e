"""Each own GEMM path's share of its own peak on one core, from thread CPU time.

    python benchmarks/path_peak.py                 # 2048^3, every dtype's best path
    python benchmarks/path_peak.py 1024 5 bf16,int8
    AIBENCH_CPU_ISA=avx2 python benchmarks/path_peak.py

The kernels run on this thread (threads=1), and the figure is FLOPs over the thread's CPU
time, the best of the rounds: time the OS gave to other processes does not count, so a
machine shared with other work still gives the kernel's own efficiency (its caches are
still shared: read the figure as a floor). The peak per core is the one `aibench run`
divides by (aibench.targets.cpu.cpu_peak_tflops of the path, over the cores it counts).
Also printed: the measured VDPBF16PS / fp32 FMA rate that ranks the bf16 paths.
`aibench run --suite gemm` gives the node's figures on every core.
"""

from __future__ import annotations

import sys
import time

import numpy as np

import kernels
from aibench.dtypes import bf16_bits
from aibench.targets.cpu import cpu_peak_tflops, physical_cores


def operands(dtype: str, size: int, rng: np.random.Generator):
    shape_a, shape_b = (size, size), (size, size)
    if dtype == "int8":
        a, b = (rng.integers(-128, 128, s, dtype=np.int8) for s in (shape_a, shape_b))
    else:
        a, b = (rng.uniform(-1, 1, s).astype(np.float64 if dtype == "fp64" else np.float32)
                for s in (shape_a, shape_b))
        if dtype == "bf16":
            a, b = bf16_bits(a), bf16_bits(b)
    return a, b, kernels.gemm_output(size, size, dtype)


def main(argv: list[str]) -> int:
    try:
        size = int(argv[0]) if argv else 2048
        rounds = int(argv[1]) if len(argv) > 1 else 4
        dtypes = argv[2].split(",") if len(argv) > 2 else list(kernels.GEMM_DTYPES)
        if size < 1 or rounds < 1 or not set(dtypes) <= set(kernels.GEMM_DTYPES):
            raise ValueError
    except ValueError:
        print(f"usage: path_peak.py [SIZE>0] [ROUNDS>0] [DTYPES from {','.join(kernels.GEMM_DTYPES)}]",
              file=sys.stderr)
        return 2
    rng = np.random.default_rng(0)
    cases = [(dtype, kernels.gemm_paths(dtype)[0], *operands(dtype, size, rng)) for dtype in dtypes]
    best = {dtype: float("inf") for dtype in dtypes}
    for _ in range(rounds):  # interleaved: every path once per round
        for dtype, path, a, b, c in cases:
            start = time.thread_time()
            kernels.gemm(a, b, c, path, threads=1)
            best[dtype] = min(best[dtype], time.thread_time() - start)
    flops = 2.0 * size**3
    for dtype, path, *_ in cases:
        peak = cpu_peak_tflops(dtype, path)
        per_core = peak["value"] * 1e3 / physical_cores()  # G per second
        rate = flops / best[dtype] / 1e9
        print(f"{dtype:5} {path:12} {size}^3, 1 thread: {rate:7.1f} G/s = {100 * rate / per_core:5.1f}% "
              f"of {per_core:.1f} ({peak['source']})")
    ratio = kernels.bf16_dot_over_fma()
    if ratio["dot_gflops"]:
        print(f"VDPBF16PS {ratio['dot_gflops']:.1f} GFLOP/s vs fp32 FMA {ratio['fma_gflops']:.1f} on one core: "
              f"ratio {ratio['ratio']:.2f} (avx512_bf16 leads the bf16 paths from {ratio['native_first_from']})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
