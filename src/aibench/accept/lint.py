"""Spec lint: every threshold of a loaded spec against its unit and against what the
hardware the spec is for can do (docs/accept.md, "Lint").

A threshold that is a figure (`min`, `max`) carries a unit. It must be one the metric's
unit converts to (GB/s and MB/s: converted; TFLOP/s and GB/s: refused), and a `min` must
lie between 5% of the hardware's bound and the bound itself: DCGM shipped an H200
memory-bandwidth threshold of 2,333 MB/s, 1000x too low, and a check like that passes
every node. The bounds:
- a GPU spec: the datasheet peak (peaks.py) of every SKU whose NVML name the spec's
  gpu_name matches (a `min` above the lowest peak fails a GPU the spec admits);
- a CPU spec that names a CPU (cpu_model) linted on that CPU: its peak from the
  measured clock (targets/cpu.py);
- a spec for NICs across nodes (min_nodes >= 2, nic_min_gbps): the line rate of the
  NICs it asks for;
- the memory suite on a GPU spec: an HBM copy (kernel d2d) the datasheet memory bandwidth
  of every SKU the spec admits, a host copy (h2d, d2h) the PCIe link those SKUs sit on;
- a percentage of the enforced power limit (pct_of_power_limit): 100%.
Where no bound is known (storage, NVLink, CPU memory, a spec that names no SKU) lint says
so in a note instead of inventing one. load_spec refuses a spec with a problem (exit 2).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from ..dtypes import FORMATS, rate_unit
from ..peaks import GPU_ROWS, GpuRow, pcie_bandwidth
from .model import Check, Spec

# A `min` below this fraction of the hardware's bound is refused: it passes a broken node.
MIN_FRACTION_OF_BOUND = 0.05

# unit -> (quantity, factor to the quantity's base unit). Units of one quantity convert;
# a unit not listed compares only with itself.
UNITS: dict[str, tuple[str, float]] = {
    **{u: ("bandwidth", f) for u, f in (("B/s", 1.0), ("KB/s", 1e3), ("MB/s", 1e6), ("GB/s", 1e9), ("TB/s", 1e12),
                                        ("bit/s", 1 / 8), ("Mbit/s", 1e6 / 8), ("Gbit/s", 1e9 / 8))},
    **{u: ("floating-point rate", f) for u, f in (("FLOP/s", 1.0), ("GFLOP/s", 1e9), ("TFLOP/s", 1e12),
                                                  ("PFLOP/s", 1e15))},
    **{u: ("integer-operation rate", f) for u, f in (("OPS", 1.0), ("GOPS", 1e9), ("TOPS", 1e12), ("POPS", 1e15))},
    **{u: ("time", f) for u, f in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6), ("ns", 1e-9))},
    "IOPS": ("I/O rate", 1.0),
    "W": ("power", 1.0), "kW": ("power", 1e3),
    "J": ("energy", 1.0), "kJ": ("energy", 1e3),
}


def convert(value: float, unit: str, to_unit: str) -> float:
    """value in `unit` expressed in `to_unit`; ValueError when the two are not one quantity."""
    if unit == to_unit:
        return value
    if unit not in UNITS or to_unit not in UNITS or UNITS[unit][0] != UNITS[to_unit][0]:
        what = lambda u: f"{u} ({UNITS[u][0]})" if u in UNITS else u  # noqa: E731
        raise ValueError(f"{what(unit)} cannot be compared with {what(to_unit)}")
    return value * UNITS[unit][1] / UNITS[to_unit][1]


@functools.lru_cache(maxsize=1)
def _suite_units() -> dict[str, dict[str, str]]:
    """suite -> {metric: unit} as the suites declare them (their asv tracks that report a
    metric unscaled, in the metric's own unit)."""
    from ..suites import all_suites

    return {name: {t.metric: t.unit for a in suite.asv_specs() for t in a.tracks if t.scale == 1.0}
            for name, suite in all_suites().items()}


def check_dtype(check: Check) -> str | None:
    """The one dtype a check is about: params.dtype, else the dtype that ends the case id
    (kernel case ids end in "-<dtype>"); None when not exactly one."""
    want = check.params.get("dtype")
    if isinstance(want, str) and want in FORMATS:
        return want
    if want is None:
        tail = check.case.rsplit("-", 1)[-1]
        if tail in FORMATS:
            return tail
    return None


def declared_unit(check: Check) -> str | None:
    """The unit the check's metric is recorded in, or None where the suite does not say.
    A kernel suite's compute rate is TFLOP/s, or TOPS for integers (dtypes.rate_unit)."""
    unit = _suite_units().get(check.suite, {}).get(check.metric)
    if unit == "TFLOP/s" and check.metric == "tflops":
        dtype = check_dtype(check)
        return rate_unit(dtype) if dtype else None
    return unit


@dataclass
class Bound:
    value: float
    unit: str
    what: str  # whose bound, for the message: "H200 SXM bf16 peak (datasheet dense peak)"


def _admitted_gpu_rows(spec: Spec) -> list[GpuRow]:
    """The peaks.py rows of every GPU SKU whose NVML name every gpu_name of the spec matches
    (none when the spec names no GPU)."""
    patterns = [re.compile(hw["gpu_name"], re.IGNORECASE) for _, hw in spec.hardware if "gpu_name" in hw]
    if not patterns:
        return []
    return [r for r in GPU_ROWS if any(all(p.search(n) for p in patterns) for n in r.names)]


def _gpu_bounds(spec: Spec, check: Check) -> list[Bound] | None:
    """Datasheet peaks of the check's dtype on every GPU SKU the spec admits; None when
    the spec names no GPU or no known SKU's name matches it."""
    dtype = check_dtype(check)
    if check.metric != "tflops" or check.suite not in ("gemm", "attention") or dtype is None:
        return None
    bounds = [Bound(r.peaks[dtype], rate_unit(dtype), f"{r.model} {dtype} datasheet dense peak (peaks.py, PCI ID "
                    f"{', '.join(r.pci_ids)})") for r in _admitted_gpu_rows(spec) if dtype in r.peaks]
    return bounds or None


def memory_kernel(check: Check) -> str | None:
    """The one memory-suite kernel a check names exactly (params.kernel), else None."""
    from ..suites.memory import cpu, cuda

    kernel = check.params.get("kernel")
    return kernel if kernel in cpu.KERNELS or kernel in cuda.KERNELS else None


def _memory_bounds(spec: Spec, check: Check) -> list[Bound] | None:
    """The memory suite on the GPUs the spec admits. d2d: the datasheet memory bandwidth.
    The suite counts a d2d copy of `size` bytes as 2 x size moved (it reads and writes them:
    memory/cuda.py KERNELS, as CUDA's bandwidthTest counts), and the datasheet figure is the
    memory interface's total for reads and writes together: the bound is the datasheet
    figure scaled by the suite's count over that read + write count (1: the same count).
    h2d/d2h: one direction of the SKU's PCIe host link after line encoding (the suite counts
    `size` bytes, once); a SKU on NVLink-C2C (GH200) or with no known link gives no bound."""
    from ..suites.memory.cuda import KERNELS

    kernel = memory_kernel(check)
    if check.suite != "memory" or check.metric not in ("gbps", "gbps_best") or kernel not in KERNELS:
        return None
    rows = _admitted_gpu_rows(spec)
    if kernel == "d2d":
        counted = KERNELS["d2d"][1] / 2  # bytes the suite counts per byte read and written
        bounds = [Bound(r.memory_tbps * 1000 * counted, "GB/s", f"{r.model} memory datasheet bandwidth {r.memory_tbps:g} TB/s "
                        f"(peaks.py, PCI ID {', '.join(r.pci_ids)}; a d2d copy counts its reads and writes, as the "
                        "datasheet does)") for r in rows if r.memory_tbps is not None]
    else:
        bounds = []
        for r in rows:
            if r.pcie is not None:
                rate, working = pcie_bandwidth(*r.pcie)
                bounds.append(Bound(rate / 1e9, "GB/s", f"{r.model}'s PCIe Gen{r.pcie[0]} x{r.pcie[1]} host link, one "
                                                        f"way ({working}; peaks.py, the datasheet's interconnect row)"))
    return bounds or None


def _power_bounds(spec: Spec, check: Check) -> list[Bound] | None:
    """A sustained window's mean power as a percentage of the enforced limit: the limit
    itself bounds it (the board's power management holds the mean to it); a `min` below 5%
    of it is a fraction written for a percentage (0.75 for 75)."""
    if check.metric != "pct_of_power_limit":
        return None
    return [Bound(100.0, "%", "enforced power limit itself (NVML; the board holds its mean power to it)")]


def _why_no_bound(check: Check) -> str:
    """Why lint has no bound for a check, for its note."""
    from ..suites.memory.cpu import KERNELS

    if check.suite == "memory" and memory_kernel(check) in KERNELS:
        return "(the CPU memory bound is the node's DIMMs' data rate, read on the node when it runs: not known at lint time)"
    return "on the hardware this spec names"


def _cpu_bounds(spec: Spec, check: Check) -> list[Bound] | None:
    """The measured peak of this CPU, when the spec names a CPU (cpu_model) and this is it."""
    patterns = [hw["cpu_model"] for _, hw in spec.hardware if "cpu_model" in hw]
    dtype = check_dtype(check)
    if not patterns or check.metric != "tflops" or check.suite not in ("gemm", "attention") or dtype is None:
        return None
    from ..fingerprint import _cpu_model
    from ..targets.cpu import cpu_peak_tflops

    model = _cpu_model() or ""
    if not all(re.search(p, model, re.IGNORECASE) for p in patterns):
        return None
    peak = cpu_peak_tflops(dtype)
    return [Bound(peak["value"], peak["unit"], f"{dtype} peak of this {model} ({peak['source']})")] if peak else None


def _nic_bounds(spec: Spec, check: Check) -> list[Bound] | None:
    """The line rate of the NICs a spec across nodes asks for: a ring all-reduce's busbw
    reaches it, and exceeds it only on more or faster NICs than the spec asks for."""
    hw = {k: max(h[k] for _, h in spec.hardware if k in h) for k in ("min_nodes", "min_nics", "nic_min_gbps")
          if any(k in h for _, h in spec.hardware)}
    if check.suite != "interconnect" or check.metric not in ("busbw_gbps", "algbw_gbps") \
            or hw.get("min_nodes", 1) < 2 or "nic_min_gbps" not in hw:
        return None
    nics = hw.get("min_nics", 1)
    rate = nics * hw["nic_min_gbps"] / 8
    return [Bound(rate, "GB/s", f"line rate of the {nics} x {hw['nic_min_gbps']:g} Gbit/s NIC(s) the spec asks for")]


def lint_spec(spec: Spec) -> tuple[list[str], list[str]]:
    """(problems, notes) of a loaded spec. Converts every `min`/`max` to its metric's
    declared unit in place, so the judge compares like with like."""
    problems: list[str] = []
    notes: list[str] = []
    for check in spec.checks:
        where = f"{check.spec} check {check.id}"
        kind = check.threshold_kind
        if kind not in ("min", "max"):
            continue  # fraction_of_peak and ratio_to_* are ranged when the file is read (spec.py)
        stated = f"{kind} {getattr(check, kind):g} {check.unit}"
        unit = declared_unit(check)
        if unit is None:
            notes.append(f"{where}: the {check.suite} suite does not declare the unit of {check.metric!r} here; "
                         f"{check.unit} is compared with the run's unit when judged")
        else:
            try:
                setattr(check, kind, convert(getattr(check, kind), check.unit, unit))
            except ValueError as e:
                problems.append(f"{where}: {stated}: {e} (the {check.suite} suite records {check.metric} in {unit})")
                continue
            if check.unit != unit:
                stated += f" (= {getattr(check, kind):.4g} {unit})"
            check.unit = unit
        if kind == "max":
            notes.append(f"{where}: no bound is known for a max of {check.metric}")
            continue
        bounds = (_gpu_bounds(spec, check) or _memory_bounds(spec, check) or _power_bounds(spec, check)
                  or _cpu_bounds(spec, check) or _nic_bounds(spec, check))
        if not bounds:
            notes.append(f"{where}: no hardware bound is known for {check.suite} {check.metric} "
                         f"{_why_no_bound(check)}; {stated} is not checked against one")
            continue
        try:
            lowest = min(bounds, key=lambda b: convert(b.value, b.unit, check.unit))
            highest = max(bounds, key=lambda b: convert(b.value, b.unit, check.unit))
            low, high = convert(lowest.value, lowest.unit, check.unit), convert(highest.value, highest.unit, check.unit)
        except ValueError as e:
            problems.append(f"{where}: {stated}: {e} (the hardware bound)")
            continue
        if check.min > low:
            problems.append(f"{where}: {stated} is above the hardware bound {low:.4g} {check.unit}, the {lowest.what}")
        elif check.min < MIN_FRACTION_OF_BOUND * high:
            problems.append(f"{where}: {stated} is below {MIN_FRACTION_OF_BOUND:.0%} of the hardware bound "
                            f"{high:.4g} {check.unit}, the {highest.what} (at least {MIN_FRACTION_OF_BOUND * high:.4g} "
                            f"{check.unit}): it passes a broken node")
    return problems, notes
