"""Memory suite: sustained memory bandwidth in GB/s (higher is better).

cpu: STREAM (McCalpin) on fp64 arrays, copy and triad (scale and add on request), one case
per NUMA node with its threads and pages on that node; impls `aibench` (own C++ kernels,
csrc/memory/stream.cpp) and `numpy`. Bytes are counted as STREAM counts them (copy and
scale 2 x 8 B per element, add and triad 3 x 8 B). The bound is the DIMM population's data
rate (dram.py), or the recorded reason there is none.

cuda: a device-to-device copy in HBM, and host-to-device / device-to-host copies over
pinned host memory (cuda.py), per GPU; bounded by the HBM datasheet bandwidth (peaks.py)
and the PCIe link (NVML).
"""

from __future__ import annotations

from typing import Any

from ...errors import UsageError
from ...fit import fits
from ...results import Metric, Samples
from ...targets import Target
from ...units import choice, parse_size, size_label
from ..base import AsvTrack, Impl, Param, case_table_asv_spec
from ..kernel import KernelSuite
from ...registry import register_suite
from . import cpu, cuda
from .dram import numa_nodes

CPU_KERNELS = tuple(cpu.KERNELS)
CUDA_KERNELS = tuple(cuda.KERNELS)
_QUICK_CPU = ("copy", "triad")


def _parse_node(text: str) -> int:
    value = int(text)
    if value < 0:
        raise ValueError("a NUMA node number is >= 0")
    return value


@register_suite
class MemorySuite(KernelSuite):
    name = "memory"
    description = "Memory bandwidth, GB/s: STREAM copy/triad per NUMA node (cpu); HBM and pinned H2D/D2H copies (cuda)"
    params = {
        "kernel": Param("kernel", choice(CPU_KERNELS + CUDA_KERNELS),
                        "cpu: " + " ".join(CPU_KERNELS) + "; cuda: " + " ".join(CUDA_KERNELS)),
        "size": Param("size", parse_size, "bytes per array (cpu, fp64) or per copy (cuda)"),
        "node": Param("node", _parse_node, "NUMA node the threads and pages are bound to (cpu)"),
    }
    target_kinds = ("cpu", "cuda")
    comparisons = (("aibench", "numpy"),)
    IMPLS = (*cpu.IMPLS, *cuda.IMPLS)
    cpu_bytes = staticmethod(lambda p: 3 * p["size"])  # a, b, c: what one impl holds (KernelSuite.case_bytes)
    cuda_bytes = staticmethod(cuda.device_bytes)

    def default_cases(self, tier: str, target: Target) -> list[dict[str, Any]]:
        if target.kind == "cpu":
            kernels = _QUICK_CPU if tier == "quick" else CPU_KERNELS
            size = cpu.default_size()
            return [{"kernel": k, "size": size, "node": node} for node in numa_nodes() for k in kernels]
        if target.kind == "cuda":
            sizes = [1 << 30] if tier != "full" else [256 << 20, 1 << 30, 4 << 30]
            return [{"kernel": k, "size": s, "node": None} for k in CUDA_KERNELS for s in sizes]
        raise UsageError(f"suite memory does not run on target {target}")

    def normalize_case(self, case: dict[str, Any]) -> dict[str, Any]:
        if case.get("kernel") in CUDA_KERNELS:
            return {**case, "node": None}  # a GPU copy has no NUMA node parameter
        return case

    def check_case(self, params: dict[str, Any], target: Target) -> None:
        kernel, size = params["kernel"], params["size"]
        if target.kind == "cpu":
            if kernel not in CPU_KERNELS:
                raise UsageError(f"memory kernel {kernel} is not a cpu kernel (cpu: {', '.join(CPU_KERNELS)})")
            nodes = numa_nodes()
            if params["node"] is None:
                params["node"] = min(nodes)
            if params["node"] not in nodes:
                raise UsageError(f"memory node {params['node']} is not a NUMA node with CPUs this process may use "
                                 f"(nodes: {', '.join(map(str, nodes))})")
            if size < 8 * 1024:
                raise UsageError(f"memory size {size} is too small (at least 8K per array)")
            reason = fits(*self.case_bytes(params, target), f"memory size {size_label(size)}", held="a, b and c")
            if reason:
                raise UsageError(reason)
        elif target.kind == "cuda" and kernel not in CUDA_KERNELS:
            raise UsageError(f"memory kernel {kernel} is not a cuda kernel (cuda: {', '.join(CUDA_KERNELS)})")

    def case_id(self, params: dict[str, Any]) -> str:
        base = f"{params['kernel']}-{size_label(params['size'])}"
        return base if params.get("node") is None else f"{base}-node{params['node']}"

    def asv_spec(self):
        """Memory: (case, impl, target) over the cpu default cases, GB/s."""
        return case_table_asv_spec(self, "Memory", (AsvTrack("track_gbps", "gbps", "GB/s"),))

    def metrics(self, params: dict[str, Any], samples: Samples, op: Impl) -> dict[str, Metric]:
        """`gbps` from the median time (headline), `gbps_best` from the fastest sample
        (what STREAM prints), `time_us`."""
        moved = op.bytes_per_call()
        s = samples.summary
        return {"gbps": Metric(moved / s.median / 1e9, "GB/s", True),
                "gbps_best": Metric(moved / s.min / 1e9, "GB/s", True),
                "time_us": Metric(s.median * 1e6, "us", False)}

    def bound(self, params: dict[str, Any], op: Impl, metrics: dict[str, Metric],
              fresh: bool = False) -> dict | None:
        """The impl's physical limit (its peak: the DIMMs' data rate, the HBM datasheet,
        the PCIe link), on `gbps_best` (the fastest sample is the one that must not exceed
        it); None, with the reason in impl_detail, where none is known."""
        peak = op.peak()
        if peak is None:
            return None
        return {"metric": "gbps_best", "value": peak["value"], "unit": peak["unit"], "source": peak["source"]}
