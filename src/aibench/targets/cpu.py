"""The CPU target: ISA paths, measured clock and theoretical peak.

Peak = cores x FMA instructions per cycle x SIMD lanes x 2 x *measured* clock. The
FMA-unit table below is per microarchitecture family; the clock comes from a C++ chain of
dependent adds run on every core at once (aibench._core.measure_clock_ghz).
"""

from __future__ import annotations

import functools
import platform

import psutil

from .. import _core
from ..dtypes import FORMATS

# dtype -> bytes per element, for SIMD lane counts
# The bf16 / int8 paths of the own kernels (_core.lowp_paths) and what each does per
# 32-bit lane per instruction at the fp32 FMA rate: path -> (factor over the fp32 peak of
# the path's vector ISA, that ISA, how). Native dot products: VDPBF16PS 2 bf16 products,
# VPDPBUSD 4 int8 products. The widening paths (every other path name, an ISA level):
# bf16 -> fp32 runs at the fp32 FMA peak; int8 -> int16 on VPMADDWD does 2 products per
# int32 lane at two instructions per cycle (uops.info for Haswell to Zen 4; 1.9 per cycle
# measured on Zen 3 with a register-only loop), twice the fp32 FMA's products.
_NATIVE_LOWP = {
    "avx512_bf16": (2, "avx512", "VDPBF16PS: 2 bf16 products per fp32 lane"),
    "avx512_vnni": (4, "avx512", "VPDPBUSD: 4 int8 products per int32 lane"),
}
_WIDENED_LOWP = {
    "bf16": (1, "bf16 widened to fp32, fp32 FMA"),
    "int8": (2, "int8 widened to int16, VPMADDWD: 2 int16 products per int32 lane"),
}


@functools.lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith(("flags", "Features")):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def cpu_vendor_family() -> tuple[str, int | None]:
    """('AuthenticAMD' | 'GenuineIntel' | ..., CPU family number) from /proc/cpuinfo."""
    vendor, family = platform.machine(), None
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                key, _, value = line.partition(":")
                key, value = key.strip(), value.strip()
                if key == "vendor_id":
                    vendor = value
                elif key == "cpu family" and family is None:
                    family = int(value)
                if key == "" and family is not None:
                    break
    except OSError:
        pass
    return vendor, family


def fma_bits_per_cycle(isa: str) -> tuple[int, str]:
    """Total FMA datapath width per core per cycle, in bits, and how it was decided.

    AMD Zen 4 (family 0x19 with AVX-512) executes 512-bit FMAs on two 256-bit units,
    so it has the FMA width of AVX2: 2 x 256. Zen 5 (family 0x1A) has full 512-bit units.
    Intel server parts with AVX-512 have two 512-bit FMA units (some SKUs one: this
    table takes the common two and says so in the source).
    """
    vendor, family = cpu_vendor_family()
    if isa == "avx512":
        if vendor == "AuthenticAMD" and family is not None and family < 0x1A:
            return 2 * 256, "AMD Zen 4: AVX-512 on two 256-bit FMA units"
        if vendor == "AuthenticAMD":
            return 2 * 512, "AMD Zen 5: two 512-bit FMA units"
        return 2 * 512, "Intel AVX-512: two 512-bit FMA units (most server SKUs)"
    if isa == "avx2":
        return 2 * 256, "AVX2: two 256-bit FMA units"
    if platform.machine() in ("aarch64", "arm64"):
        return 2 * 128, "aarch64: assumed two 128-bit NEON FMA pipes"
    return 2 * 128, "scalar/SSE path: two 128-bit FMA-equivalent pipes"


@functools.lru_cache(maxsize=1)
def measured_clock_ghz() -> float:
    return float(_core.measure_clock_ghz(0.2))


def worker_threads() -> int:
    """Threads a CPU impl gets: OMP_NUM_THREADS when set, else every processor this process
    may run on (the count aibench's own kernels use, so that peers get the same cores)."""
    import os

    env = os.environ.get("OMP_NUM_THREADS", "").split(",")[0].strip()
    if env.isdigit() and int(env) > 0:
        return int(env)
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def import_torch():
    """torch, with its intra-op threads set to worker_threads(): its own default can be
    lower (1 under an MPI launcher, where MKL picks one thread per rank), and a peer held
    to fewer cores than aibench's kernel would be an unfair comparison."""
    import torch

    torch.set_num_threads(worker_threads())
    return torch


def physical_cores() -> int:
    return psutil.cpu_count(logical=False) or psutil.cpu_count() or 1


def lowp_path(dtype: str) -> str:
    """The path the own bf16 / int8 kernels take here: the first of _core.lowp_paths."""
    return _core.lowp_paths(dtype)[0]


def kernel_method(dtype: str, path: str) -> str:
    """How the own kernel computes `dtype` on `path`, for the case's impl_detail."""
    if dtype not in _WIDENED_LOWP:
        return f"{dtype} FMA ({path})"
    if path in _NATIVE_LOWP:
        return _NATIVE_LOWP[path][2]
    return f"{_WIDENED_LOWP[dtype][1]} ({_widening_kernel_isa(dtype, path)} kernel)"


def _widening_kernel_isa(dtype: str, path: str) -> str:
    """The vector ISA a widening path's micro-kernel uses: int8 on the avx512 level runs
    the avx2 VPMADDWD kernel (gemm_dispatch.cpp, int16_pair_kernel)."""
    return "avx2" if dtype == "int8" and path == "avx512" else path


def cpu_peak_tflops(dtype: str, isa: str | None = None) -> dict | None:
    """Theoretical peak for `dtype` on the best (or given) path, or None if unknown.
    bf16 / int8: `isa` is a path of _core.lowp_paths; the peak is that of the instructions
    the path uses (a widening path is held to the fp32 FMA rate it runs at)."""
    if dtype in _WIDENED_LOWP:
        path = isa or lowp_path(dtype)
        if path in _NATIVE_LOWP:
            factor, vector_isa, how = _NATIVE_LOWP[path]
        else:
            factor, how = _WIDENED_LOWP[dtype]
            vector_isa = _widening_kernel_isa(dtype, path)
        base = cpu_peak_tflops("fp32", vector_isa)
        return {**base, "value": base["value"] * factor,
                "source": f"{factor} x the fp32 peak ({how}): {base['source']}"}
    if dtype not in ("fp64", "fp32"):
        return None
    isa = isa or _core.best_isa()
    bits, why = fma_bits_per_cycle(isa)
    lanes_per_cycle = bits // (8 * FORMATS[dtype].itemsize)
    cores = physical_cores()
    ghz = measured_clock_ghz()
    value = cores * lanes_per_cycle * 2 * ghz * 1e9 / 1e12
    return {
        "value": value,
        "unit": "TFLOP/s",
        "source": f"{cores} cores x {lanes_per_cycle} FMA lanes/cycle x 2 x {ghz:.3f} GHz measured ({why})",
    }


@functools.lru_cache(maxsize=1)
def cache_sizes() -> dict[str, int]:
    """Cache sizes in bytes per level name (L1d, L2, L3) from sysfs, as seen by cpu0."""
    sizes: dict[str, int] = {}
    base = "/sys/devices/system/cpu/cpu0/cache"
    try:
        import os

        for index in sorted(os.listdir(base)):
            if not index.startswith("index"):
                continue
            def read(name):
                with open(f"{base}/{index}/{name}", encoding="utf-8") as f:
                    return f.read().strip()
            level, kind, size = read("level"), read("type"), read("size")
            if kind == "Instruction":
                continue
            mult = {"K": 1024, "M": 1024**2, "G": 1024**3}.get(size[-1], 1)
            value = int(size.rstrip("KMG")) * mult
            sizes[f"L{level}" + ("d" if level == "1" else "")] = value
    except (OSError, ValueError):
        pass
    return sizes


def last_level_cache_bytes() -> int:
    sizes = cache_sizes()
    return max(sizes.values()) if sizes else 32 * 1024**2
