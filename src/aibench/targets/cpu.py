"""The CPU target: ISA paths, measured clock, cores, theoretical and measured peaks.

Theoretical peak = cores x FMA width per cycle x 2 x *measured* clock (AMX for bf16 / int8
where the CPU has it). The clock comes from a C++ chain of dependent multiplies of known
latency run on every allowed core at once (aibench._core.measure_clock), checked against
the cycle counters and cpufreq's maximum; the cores from the affinity mask and the cgroup
CPU quota. Beside it, a measured FMA peak (aibench._core.measure_fma_peak) shows what a
table cannot know (one 512-bit FMA unit, the AVX-512 clock drop, a VM's share of a core).
"""

from __future__ import annotations

import functools
import math
import os
import platform
import statistics
from collections.abc import Iterable
from pathlib import Path

from .. import _core
from ..dtypes import FORMATS, rate_unit

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

# Intel AMX (Sapphire Rapids and later), per core per cycle: TDPBF16PS multiplies 16x32 by
# 32x16 bf16 tiles (8192 multiply-adds) and TDPBSSD 16x64 by 64x16 int8 tiles (16384) with a
# throughput of one per 16 cycles, so 512 bf16 and 1024 int8 multiply-adds per cycle: 1024
# bf16 FLOPs and 2048 int8 OPS. Intel 64 and IA-32 Architectures Optimization Reference
# Manual, "Intel AMX" chapter; Intel's AMX overview states the same 2048 int8 / 1024 bf16
# operations per cycle per core.
_AMX_OPS_PER_CYCLE = {"bf16": (1024, "amx_bf16", "AMX TDPBF16PS"), "int8": (2048, "amx_int8", "AMX TDPBSSD")}

# aarch64 cores by MIDR ("CPU implementer" 0x41 = Arm, "CPU part"): FMA datapath bits per
# cycle per core. Arm Neoverse Software Optimization Guides: N1 and N2 two 128-bit FP/ASIMD
# pipes (N2's SVE2 vectors are 128-bit); V1 four 128-bit pipes (or two 256-bit SVE);
# V2 and V3 four 128-bit pipes. AWS Graviton2 = N1, Graviton3 = V1, Graviton4 = V2;
# NVIDIA Grace = V2.
_ARM_FMA_BITS = {
    (0x41, 0xD0C): (2 * 128, "Arm Neoverse N1 (Graviton2): two 128-bit FMA pipes"),
    (0x41, 0xD49): (2 * 128, "Arm Neoverse N2: two 128-bit FMA pipes"),
    (0x41, 0xD40): (4 * 128, "Arm Neoverse V1 (Graviton3): four 128-bit (two 256-bit SVE) FMA pipes"),
    (0x41, 0xD4F): (4 * 128, "Arm Neoverse V2 (Grace, Graviton4): four 128-bit FMA pipes"),
    (0x41, 0xD84): (4 * 128, "Arm Neoverse V3: four 128-bit FMA pipes"),
}

# A clock reading above cpufreq's maximum (or a cycle counter) by more than this is refused.
CLOCK_TOLERANCE = 0.05


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


def cpuinfo_first(root: str = "/") -> dict[str, str]:
    """The first processor's fields of /proc/cpuinfo (key -> value), {} if unreadable."""
    fields: dict[str, str] = {}
    try:
        with open(Path(root, "proc/cpuinfo"), encoding="utf-8") as f:
            for line in f:
                key, sep, value = line.partition(":")
                if not sep:
                    if fields:
                        break  # the blank line after the first processor
                    continue
                fields.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    return fields


def cpu_vendor_family(root: str = "/") -> tuple[str, int | None]:
    """('AuthenticAMD' | 'GenuineIntel' | ..., CPU family number) from /proc/cpuinfo."""
    fields = cpuinfo_first(root)
    family = fields.get("cpu family")
    return fields.get("vendor_id", platform.machine()), int(family) if family and family.isdigit() else None


def arm_core(root: str = "/") -> tuple[int, int] | None:
    """(implementer, part) of an aarch64 core from /proc/cpuinfo's MIDR fields, or None."""
    fields = cpuinfo_first(root)
    try:
        return int(fields["CPU implementer"], 16), int(fields["CPU part"], 16)
    except (KeyError, ValueError):
        return None


def infer_fma_units_512(measured: dict[str, dict[str, float]]) -> tuple[int, float] | None:
    """Intel AVX-512 parts have one or two 512-bit FMA units and CPUID does not say which.
    Both have two 256-bit units for AVX2, so the measured avx512 / avx2 fp32 rate is about
    2 with two units (less the AVX-512 clock drop: 1.4-2.0) and about 1 with one (0.7-1.0).
    `measured` is {isa: {"fp32": rate}} (one_core_fma_rates: one thread, so that other
    processes on a shared machine disturb it least). Returns (units, ratio), or None
    without both measurements."""
    try:
        ratio = measured["avx512"]["fp32"] / measured["avx2"]["fp32"]
    except (KeyError, TypeError, ZeroDivisionError):
        return None
    return (2 if ratio > 1.3 else 1), ratio


def fma_bits_per_cycle(isa: str, root: str = "/", measured: dict | None = None) -> tuple[int, str]:
    """Total FMA datapath width per core per cycle, in bits, and how it was decided.

    AMD Zen 4 (family 0x19 with AVX-512) executes 512-bit FMAs on two 256-bit units, so it
    has the FMA width of AVX2: 2 x 256. Zen 5 (family 0x1A) has full 512-bit units. Intel
    AVX-512 parts have two 512-bit FMA units or one (some Xeon Silver/Bronze/Gold 5xxx):
    inferred from the measured FMA peak (infer_fma_units_512; `measured` defaults to this
    machine's). aarch64: per core type from the MIDR (_ARM_FMA_BITS).
    """
    vendor, family = cpu_vendor_family(root)
    if isa == "avx512":
        if vendor == "AuthenticAMD" and family is not None and family < 0x1A:
            return 2 * 256, "AMD Zen 4: AVX-512 on two 256-bit FMA units"
        if vendor == "AuthenticAMD":
            return 2 * 512, "AMD Zen 5: two 512-bit FMA units"
        inferred = infer_fma_units_512(one_core_fma_rates() if measured is None else measured)
        if inferred is None:
            return 2 * 512, "Intel AVX-512: two 512-bit FMA units assumed (no measured FMA peak to tell)"
        units, ratio = inferred
        return units * 512, (f"Intel AVX-512: {units} 512-bit FMA unit(s), inferred from the measured "
                             f"avx512/avx2 FMA rate {ratio:.2f}")
    if isa == "avx2":
        return 2 * 256, "AVX2: two 256-bit FMA units"
    core = arm_core(root)
    if core is not None:
        if core in _ARM_FMA_BITS:
            return _ARM_FMA_BITS[core]
        return 2 * 128, f"aarch64 core {core[0]:#x}:{core[1]:#x} not in the table: two 128-bit FMA pipes assumed"
    return 2 * 128, "scalar/SSE path: two 128-bit FMA-equivalent pipes"


# ---- cores -----------------------------------------------------------------------------

def read_sysfs(path: Path) -> str | None:
    """A small kernel file's text, stripped; None when missing or unreadable."""
    try:
        return path.read_text().strip()
    except (OSError, UnicodeDecodeError):
        return None


def cgroup_cpu_limit(root: str = "/") -> dict | None:
    """The CPU quota of this process's cgroup in CPUs (quota / period), or None if
    unlimited or unreadable: cgroup v2 `cpu.max`, or v1 `cpu.cfs_quota_us` /
    `cpu.cfs_period_us`, the tightest of the cgroup and its ancestors (a container sees
    its own cgroup at the mount point)."""
    base = Path(root, "sys/fs/cgroup")
    membership = read_sysfs(Path(root, "proc/self/cgroup")) or ""
    candidates: list[tuple[Path, str]] = []  # (directory, "v1" | "v2")
    for line in membership.splitlines():
        _, controllers, path = (line.split(":", 2) + ["", ""])[:3]
        if controllers == "":
            version, mount = "v2", base
        elif "cpu" in controllers.split(","):
            version = "v1"
            mount = next((base / name for name in (controllers, "cpu,cpuacct", "cpu") if (base / name).is_dir()), base)
        else:
            continue
        rel = Path(path.lstrip("/"))
        for parent in [rel, *rel.parents]:
            candidates.append((mount / parent, version))
    if not candidates:  # no /proc/self/cgroup: the mount points themselves
        candidates = [(base, "v2"), (base / "cpu,cpuacct", "v1"), (base / "cpu", "v1")]
    best: dict | None = None
    for directory, version in candidates:
        if version == "v2":
            text = read_sysfs(directory / "cpu.max")
            if not text or text.split()[0] == "max":
                continue
            quota, period = (text.split() + ["100000"])[:2]
            where = directory / "cpu.max"
        else:
            quota, period = read_sysfs(directory / "cpu.cfs_quota_us"), read_sysfs(directory / "cpu.cfs_period_us")
            if quota is None or period is None or quota.startswith("-"):
                continue
            where = directory / "cpu.cfs_quota_us"
        try:
            cpus = int(quota) / int(period)
        except (ValueError, ZeroDivisionError):
            continue
        if cpus > 0 and (best is None or cpus < best["cpus"]):
            best = {"cpus": cpus, "quota_us": int(quota), "period_us": int(period), "file": str(where)}
    return best


def core_budget(cpus: Iterable[int] | None = None, root: str = "/") -> dict:
    """The cores this process may use: the physical cores (distinct package/core ids in
    sysfs) of the CPUs in its affinity mask (`cpus`, default sched_getaffinity), capped at
    the cgroup CPU quota rounded up. {cores, cpus, physical_cores, cgroup, source}."""
    if cpus is None:
        cpus = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else range(os.cpu_count() or 1)
    cpus = sorted(cpus)
    topology = Path(root, "sys/devices/system/cpu")
    ids = set()
    for cpu in cpus:
        # A core is its set of logical CPUs (core_cpus_list, Linux 5.3+, or its older name
        # thread_siblings_list), else its package and core id; no topology: count CPUs.
        siblings = (read_sysfs(topology / f"cpu{cpu}/topology/core_cpus_list")
                    or read_sysfs(topology / f"cpu{cpu}/topology/thread_siblings_list"))
        package = read_sysfs(topology / f"cpu{cpu}/topology/physical_package_id")
        core = read_sysfs(topology / f"cpu{cpu}/topology/core_id")
        ids.add(("siblings", siblings) if siblings else (package, core) if core is not None else ("cpu", cpu))
    physical = len(ids) or 1
    limit = cgroup_cpu_limit(root)
    cores, source = physical, f"{physical} physical core(s) of the {len(cpus)} CPU(s) in the affinity mask"
    if limit is not None and math.ceil(limit["cpus"]) < physical:
        cores = math.ceil(limit["cpus"])
        source += f", capped at the cgroup CPU quota of {limit['cpus']:g} CPUs"
    return {"cores": cores, "cpus": len(cpus), "physical_cores": physical, "cgroup": limit, "source": source}


def physical_cores() -> int:
    """The cores this process may use (core_budget): the physical cores of its affinity mask,
    capped at its cgroup CPU quota."""
    return core_budget()["cores"]


# ---- clock -----------------------------------------------------------------------------

def cpufreq_max_ghz(cpus: Iterable[int] | None = None, root: str = "/") -> float | None:
    """cpufreq's cpuinfo_max_freq (the highest boost clock), in GHz, over `cpus`; None
    without cpufreq (many VMs)."""
    if cpus is None:
        cpus = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else range(os.cpu_count() or 1)
    best = None
    for cpu in cpus:
        text = read_sysfs(Path(root, f"sys/devices/system/cpu/cpu{cpu}/cpufreq/cpuinfo_max_freq"))
        if text and text.isdigit():
            best = max(best or 0.0, int(text) / 1e6)
    return best


def cpuinfo_mhz(root: str = "/") -> float | None:
    """Median "cpu MHz" of /proc/cpuinfo (a VM's nominal clock; a host's current one)."""
    values = []
    try:
        with open(Path(root, "proc/cpuinfo"), encoding="utf-8") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == "cpu MHz":
                    try:
                        values.append(float(value))
                    except ValueError:
                        pass
    except OSError:
        pass
    return statistics.median(values) if values else None


def check_clock(reading: dict, max_ghz: float | None, mhz: float | None) -> dict:
    """Judge a clock reading (_core.measure_clock) against its cross-checks. The chain's
    figure is refused when it exceeds cpufreq's maximum, or a cycle counter (perf or APERF,
    read over the same slices), by more than CLOCK_TOLERANCE; the clock used for peaks is
    then the counter's figure, else cpufreq's maximum, else none. /proc/cpuinfo's MHz is
    recorded as the cross-check of last resort (a VM without counters or cpufreq).
    Returns the reading plus {cpufreq_max_ghz, cpuinfo_mhz, refused, ghz_used, source}.
    """
    chain = reading["ghz"]
    counter = reading.get("perf_cycles_ghz") or reading.get("aperf_ghz")
    counter_name = "perf cycles" if reading.get("perf_cycles_ghz") else "APERF"
    refused = None
    if max_ghz is not None and chain > max_ghz * (1 + CLOCK_TOLERANCE):
        refused = f"{chain:.3f} GHz measured is above cpufreq's maximum {max_ghz:.3f} GHz"
    elif counter is not None and chain > counter * (1 + CLOCK_TOLERANCE):
        refused = f"{chain:.3f} GHz measured is above the {counter_name} counter's {counter:.3f} GHz"
    out = {**reading, "cpufreq_max_ghz": max_ghz, "cpuinfo_mhz": mhz, "refused": refused}
    if refused is None:
        checks = [f"{counter_name} {counter:.3f} GHz" if counter else None,
                  f"cpufreq max {max_ghz:.3f} GHz" if max_ghz else None,
                  f"cpuinfo {mhz / 1e3:.3f} GHz" if mhz and not counter else None]
        said = "; ".join(c for c in checks if c)
        return {**out, "ghz_used": chain, "source": f"{chain:.3f} GHz measured ({reading.get('chain', 'chain')}); "
                + (f"cross-checks: {said}" if said else "no cross-check readable")}
    # A refusal always has a figure to fall back on: the one that refused it.
    if counter is not None:
        return {**out, "ghz_used": counter, "source": f"{counter_name} counter {counter:.3f} GHz ({refused})"}
    return {**out, "ghz_used": max_ghz, "source": f"cpufreq maximum {max_ghz:.3f} GHz ({refused})"}


@functools.lru_cache(maxsize=1)
def clock_reading() -> dict:
    """This machine's clock reading, judged (check_clock); measured once per process."""
    return check_clock(dict(_core.measure_clock(0.2)), cpufreq_max_ghz(), cpuinfo_mhz())


def measured_clock_ghz() -> float:
    """The clock peaks use (clock_reading's ghz_used): the measured one unless refused."""
    return clock_reading()["ghz_used"]


# ---- measured FMA peak -----------------------------------------------------------------

@functools.lru_cache(maxsize=1)
def measured_fma_peak() -> dict[str, dict[str, float]]:
    """TFLOP/s of a register-only FMA loop on every allowed CPU at once, per ISA level this
    CPU runs (avx2, avx512; neon) and dtype (fp32, fp64): {isa: {dtype: TFLOP/s}}.
    About 0.1-0.2 s in all."""
    return {isa: {dtype: _core.measure_fma_peak(isa, dtype)["gflops"] / 1e3 for dtype in ("fp32", "fp64")}
            for isa in _core.fma_peak_isas()}


@functools.lru_cache(maxsize=1)
def one_core_fma_rates() -> dict[str, dict[str, float]]:
    """fp32 GFLOP/s of the FMA loop on one thread, per ISA level: {isa: {"fp32": rate}}."""
    return {isa: {"fp32": _core.measure_fma_peak(isa, "fp32", 20, 1)["gflops"]} for isa in _core.fma_peak_isas()}


def fma_peak_report() -> dict:
    """The measured FMA peak beside the theoretical one, per ISA level and dtype:
    {isa: {dtype: {measured_tflops, theoretical_tflops, ratio}}}, `threads` (the loop ran on
    as many; OMP_NUM_THREADS below the cores lowers the ratio), plus `fma_units_512` (with
    the avx512/avx2 ratio it came from) on Intel AVX-512 parts."""
    measured = measured_fma_peak()
    report: dict = {"threads": _core.default_threads()}
    for isa, per_dtype in measured.items():
        report[isa] = {}
        for dtype, value in per_dtype.items():
            theory = cpu_peak_tflops(dtype, isa)["value"]  # fp32 and fp64 always have a peak
            report[isa][dtype] = {"measured_tflops": value, "theoretical_tflops": theory,
                                  "ratio": value / theory if theory else None}
    vendor, _ = cpu_vendor_family()
    inferred = infer_fma_units_512(one_core_fma_rates()) if vendor == "GenuineIntel" else None
    if inferred is not None:
        report["fma_units_512"] = {"units": inferred[0], "avx512_over_avx2": inferred[1]}
    return report


def case_threads(allowed: Iterable[int] | None = None, root: str = "/") -> tuple[int, str]:
    """The threads every CPU impl of a case runs with (the own kernels' `threads`, BLAS
    through threadpoolctl, torch.set_num_threads), and the rule that gave them:
    OMP_NUM_THREADS when set, else the cores this process may use (core_budget: the
    physical cores of the affinity mask, capped by the cgroup CPU quota).
    `allowed` and `root` stand in for the affinity mask and / in tests."""
    env = os.environ.get("OMP_NUM_THREADS", "").split(",")[0].strip()
    if env.isdigit() and int(env) > 0:
        return int(env), "OMP_NUM_THREADS"
    budget = core_budget(allowed, root)
    return budget["cores"], f"one per core: {budget['source']}"


def worker_threads() -> int:
    """Threads a CPU impl gets: the one rule of case_threads."""
    return case_threads()[0]


def import_torch():
    """torch, with its intra-op threads set to worker_threads(): its own default can be
    lower (1 under an MPI launcher, where MKL picks one thread per rank), and a peer held
    to fewer cores than aibench's kernel would be an unfair comparison."""
    import torch

    torch.set_num_threads(worker_threads())
    return torch


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


def _path_instructions(dtype: str, isa: str | None) -> tuple[str, str, float, str]:
    """What bounds `dtype` on path `isa` (None: the best path): (the FMA loop's dtype,
    its vector ISA, products per fp32-lane FMA over it, how). bf16 / int8 run at a factor
    of the fp32 FMA rate of their vector ISA (_NATIVE_LOWP, _WIDENED_LOWP)."""
    if dtype in _WIDENED_LOWP:
        path = isa or lowp_path(dtype)
        if path in _NATIVE_LOWP:
            factor, vector_isa, how = _NATIVE_LOWP[path]
        else:
            factor, how = _WIDENED_LOWP[dtype]
            vector_isa = _widening_kernel_isa(dtype, path)
        return "fp32", vector_isa, factor, how
    return dtype, isa or _core.best_isa(), 1, f"{dtype} FMA"


def cpu_peak_tflops(dtype: str, isa: str | None = None) -> dict | None:
    """Theoretical peak for `dtype` on the best (or given) path, or None if unknown.
    bf16 / int8 with no `isa`: AMX where the CPU has it (what oneDNN-backed peers use),
    else the own kernels' best path. With `isa` a path of _core.lowp_paths: the peak
    of the instructions the path uses (a widening path is held to the fp32 FMA rate it
    runs at). int8 in TOPS. `kind`, `dtype` and `isa` say whose peak it is (the case's
    bound is the measured rate of the same instructions: compute_bound)."""
    if dtype in _AMX_OPS_PER_CYCLE and isa is None and _AMX_OPS_PER_CYCLE[dtype][1] in cpu_flags():
        ops, amx, how = _AMX_OPS_PER_CYCLE[dtype]
        cores, ghz = physical_cores(), measured_clock_ghz()
        return {"value": cores * ops * ghz * 1e9 / 1e12, "unit": rate_unit(dtype),
                "source": f"{cores} cores x {ops} {dtype} ops/cycle ({how}) x {ghz:.3f} GHz",
                "kind": "cpu", "dtype": dtype, "isa": amx}
    if dtype not in ("fp64", "fp32", *_WIDENED_LOWP):
        return None
    fma_dtype, vector_isa, factor, how = _path_instructions(dtype, isa)
    bits, why = fma_bits_per_cycle(vector_isa)
    lanes_per_cycle = bits // (8 * FORMATS[fma_dtype].itemsize)
    cores, ghz = physical_cores(), measured_clock_ghz()
    # An FMA is two FLOPs (a multiply and an add): the 2 below.
    value = cores * lanes_per_cycle * 2 * ghz * 1e9 / 1e12
    source = f"{cores} cores x {lanes_per_cycle} FMA lanes/cycle x 2 x {ghz:.3f} GHz ({why})"
    if factor != 1:
        value, source = value * factor, f"{factor} x the fp32 peak ({how}): {source}"
    return {"value": value, "unit": rate_unit(dtype), "source": source, "kind": "cpu", "dtype": dtype,
            "isa": isa or (lowp_path(dtype) if dtype in _WIDENED_LOWP else vector_isa)}


# ---- the bound of a compute figure -----------------------------------------------------

# A measured FMA loop above the theoretical peak of its instructions by more than this
# refuses that peak (a wrong clock or lane count: a table error on a CPU nobody here has).
FMA_OVER_THEORY = 1.10
# A GEMM / attention figure may not exceed the measured FMA rate of its path's
# instructions on the allowed cores by more than this (timer resolution, clock drift).
FIGURE_OVER_FMA = 1.05


# Windows of the loop that bounds figures: more than measured_fma_peak's 20, since the
# best of 20 short windows can still be a disturbed one on a busy machine (a bound too
# low fails a good figure); 100 windows of 2-3 ms each.
_BOUND_WINDOWS = 100
_FRESH_TRIES = 3


# (loop ISA, dtype) -> the best TFLOP/s measured in this process (_fma_loop_rate).
_LOOP_RATES: dict[tuple[str, str], float] = {}


def _fma_loop_rate(loop_isa: str, fma_dtype: str, fresh: bool) -> float:
    """TFLOP/s of the register-only FMA loop on the allowed cores: the better of the loop
    on every allowed CPU at once and the loop on one thread times the cores (each core runs
    at most what one core alone runs, turbo included, so both are upper limits; on a busy
    machine the one-thread loop finds undisturbed windows where the all-core loop cannot).
    Measured once per process and loop; with `fresh`, the best of that and a few new,
    longer measurements (a figure that exceeded the bound is judged again against a loop
    that had every chance to run undisturbed, and later cases keep the better figure)."""
    def measure(windows: int) -> float:
        every_cpu = _core.measure_fma_peak(loop_isa, fma_dtype, windows)["gflops"]
        one_thread = _core.measure_fma_peak(loop_isa, fma_dtype, windows, 1)["gflops"]
        return max(every_cpu, one_thread * physical_cores()) / 1e3

    key = (loop_isa, fma_dtype)
    if key not in _LOOP_RATES:
        _LOOP_RATES[key] = measure(_BOUND_WINDOWS)
    if fresh:
        for _ in range(_FRESH_TRIES):
            _LOOP_RATES[key] = max(_LOOP_RATES[key], measure(2 * _BOUND_WINDOWS))
    return _LOOP_RATES[key]


def compute_bound(dtype: str, isa: str | None = None, fresh: bool = False) -> dict | None:
    """The independent bound of a CPU compute figure of `dtype` on path `isa` (None: the
    best path, or AMX where peers use it): FIGURE_OVER_FMA x the measured FMA rate of the
    path's instructions on every allowed CPU ({value, unit, source}), or None for a dtype
    with no FMA path. The measured loop is first held to FMA_OVER_THEORY x its theoretical
    peak: above it, `refused` says why and the case fails (the peak is wrong)."""
    if dtype in _AMX_OPS_PER_CYCLE and isa is None and _AMX_OPS_PER_CYCLE[dtype][1] in cpu_flags():
        amx = cpu_peak_tflops(dtype)
        return {"value": FIGURE_OVER_FMA * amx["value"], "unit": amx["unit"],
                "source": f"{FIGURE_OVER_FMA} x the theoretical AMX peak (no measured loop runs AMX): {amx['source']}"}
    if dtype not in ("fp64", "fp32", *_WIDENED_LOWP):
        return None
    fma_dtype, vector_isa, factor, how = _path_instructions(dtype, isa)
    loops = _core.fma_peak_isas()  # narrowest first
    # A path narrower than every loop (scalar, SSE) is bounded by the narrowest loop.
    loop_isa = vector_isa if vector_isa in loops else loops[0]
    rate = _fma_loop_rate(loop_isa, fma_dtype, fresh)
    theory = cpu_peak_tflops(fma_dtype, loop_isa)
    out = {"value": FIGURE_OVER_FMA * factor * rate, "unit": rate_unit(dtype),
           "source": (f"{FIGURE_OVER_FMA} x the measured FMA rate of the path's instructions: "
                      + (f"{factor} x " if factor != 1 else "")
                      + f"{rate:.4g} TFLOP/s of the {loop_isa} {fma_dtype} FMA loop on the {physical_cores()} allowed "
                        f"core(s) ({how})")}
    if rate > FMA_OVER_THEORY * theory["value"]:
        out["refused"] = (f"measured {loop_isa} {fma_dtype} FMA loop {rate:.4g} TFLOP/s > "
                          f"{FMA_OVER_THEORY * theory['value']:.4g} TFLOP/s ({FMA_OVER_THEORY} x the theoretical "
                          f"peak {theory['source']}): the theoretical peak is refused (a wrong clock or lane count)")
    return out


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
