"""Memory bandwidth on the cuda target, per GPU: a device-to-device copy in HBM (`d2d`), and
host-to-device (`h2d`) / device-to-host (`d2h`) copies over pinned host memory, each one
cudaMemcpyAsync (CuPy's runtime binding, impl `cupy`) timed with CUDA events around the
launch (targets.cuda.event_timer, an L2 flush before each).

Bytes as nvbandwidth and CUDA's bandwidthTest count them: a d2d copy reads and writes
`size` bytes of HBM (2 x size); h2d and d2h move `size` bytes over the host link.
Bounds: d2d the HBM datasheet bandwidth (peaks.py, by PCI ID); h2d/d2h the PCIe link's
maximum generation x width from NVML, after line encoding. A GPU whose host link is not
PCIe (GH200's NVLink-C2C) has no PCIe bound, and says so.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ...faults import inject
from ...results import FAILED, PASSED, Validation
from ...targets import cuda as cu
from ...units import size_label
from ..base import RunContext
from ..kernel import KernelRunner

# kernel -> (cudaMemcpyKind, bytes moved per byte copied)
KERNELS = {"d2d": (3, 2), "h2d": (1, 1), "d2h": (2, 1)}
_NOT_PCIE = ("GH200",)  # host link NVLink-C2C
_CHUNK = 16 << 20


def device_bytes(params: dict[str, Any]) -> int:
    """GPU memory one impl holds: source and destination for d2d, one buffer otherwise."""
    return params["size"] * (2 if params["kernel"] == "d2d" else 1)


def byte_pattern(size: int) -> np.ndarray:
    """`size` bytes of a multiplicative hash of the byte index (bits 24-31 of j x 2654435761:
    no period below 4 GiB, so a copy from a wrong offset shows), made in 16 MiB chunks."""
    out = np.empty(size, dtype=np.uint8)
    for start in range(0, size, _CHUNK):
        j = np.arange(start, min(size, start + _CHUNK), dtype=np.uint64)
        out[start:start + j.size] = (j * np.uint64(2654435761)) >> np.uint64(24)
    return out


def pcie_limit(index: int) -> tuple[float | None, str]:
    """(bytes per second, source) of GPU `index`'s PCIe link at its maximum generation and
    width (NVML), or (None, why not)."""
    from ...peaks import PCIE_GENERATIONS, gpu_row, pcie_bandwidth

    row = gpu_row(cu.device_name(index), cu.pci_id(index))
    if row is not None and row.model in _NOT_PCIE:
        return None, f"no independent bound: the {row.model}'s host link is NVLink-C2C, not PCIe"
    nvml, handle = cu._nvml_handle(index)
    if handle is None:
        return None, "no independent bound: NVML does not answer (no PCIe link generation or width)"
    try:
        gen = int(nvml.nvmlDeviceGetMaxPcieLinkGeneration(handle))
        width = int(nvml.nvmlDeviceGetMaxPcieLinkWidth(handle))
    except Exception as e:  # noqa: BLE001 - an NVML without the query: no bound, said why
        return None, f"no independent bound: NVML gives no PCIe link ({type(e).__name__}: {e})"
    if gen not in PCIE_GENERATIONS or width <= 0:
        return None, f"no independent bound: NVML reports PCIe Gen{gen} x{width}"
    rate, working = pcie_bandwidth(gen, width)
    return rate, f"PCIe Gen{gen} x{width} link (NVML max generation and width): {working}"


class CudaCopy(KernelRunner):
    """One cudaMemcpyAsync of `size` bytes on one GPU, between buffers filled with a
    byte pattern; the check compares the destination with the source, every byte."""

    name = "cupy"
    target_kinds = ("cuda",)
    description = ("cudaMemcpyAsync through CuPy's runtime binding: HBM device-to-device, and host-to-device / "
                   "device-to-host over pinned host memory; CUDA events around each copy")

    def __init__(self, params: dict[str, Any], ctx: RunContext):
        cu.require(ctx.target)
        import cupy

        self.cupy, self.params, self.kernel = cupy, params, params["kernel"]
        self.index = ctx.target.index or 0
        self.size = params["size"]
        cu.require_device_memory(device_bytes(params), ctx.target, f"memory size {size_label(self.size)}")
        self.device = cupy.cuda.Device(self.index)
        self.device.use()
        pattern = byte_pattern(self.size)
        self.dev_src = self.dev_dst = self.pinned = None
        if self.kernel == "d2d":
            self.dev_src, self.dev_dst = cupy.asarray(pattern), cupy.empty(self.size, dtype=cupy.uint8)
            src, dst = self.dev_src.data.ptr, self.dev_dst.data.ptr
        else:
            self._pinned_mem = cupy.cuda.alloc_pinned_memory(self.size)
            self.pinned = np.frombuffer(self._pinned_mem, np.uint8, self.size)
            if self.kernel == "h2d":
                self.pinned[...] = pattern
                self.dev_dst = cupy.empty(self.size, dtype=cupy.uint8)
                src, dst = self.pinned.ctypes.data, self.dev_dst.data.ptr
            else:
                self.dev_src = cupy.asarray(pattern)
                src, dst = self.dev_src.data.ptr, self.pinned.ctypes.data
        self.expected = pattern
        kind = KERNELS[self.kernel][0]
        stream = cupy.cuda.get_current_stream().ptr
        self.launch = lambda: cupy.cuda.runtime.memcpyAsync(dst, src, self.size, kind, stream)
        self.flusher = cu.L2Flusher(self.index)
        self.timer = cu.event_timer(self.launch, self.flusher)
        self.telemetry_start = cu.telemetry_snapshot(self.index)

    def run(self) -> None:
        self.launch()
        self.device.synchronize()

    def time(self, number: int) -> float:
        return self.timer(number)

    def _destination(self):
        return self.pinned if self.kernel == "d2h" else self.dev_dst

    def poison_output(self) -> None:
        """Every byte of the destination set to the complement of what the copy writes."""
        poison = np.invert(self.expected)
        if self.kernel == "d2h":
            self.pinned[...] = poison
        else:
            self.dev_dst.set(poison)
        self.device.synchronize()

    def check(self) -> Validation:
        """One timed copy into a poisoned destination, then (tests only) the injected fault,
        then every byte of the destination against the source pattern."""
        self.poison_output()
        self.time(1)
        self.device.synchronize()
        dst = self._destination()
        got = dst if isinstance(dst, np.ndarray) else dst.get()
        words = got[: got.size // 4 * 4].view(np.int32)  # the fault kinds act on whole words
        inject(self.name, words, "int32")  # tests only: corrupts in place
        wrong = np.flatnonzero(got != self.expected)
        if wrong.size:
            return Validation(status=FAILED, max_rel_error=float("inf"), tolerance=0.0,
                              reason=f"wrong result: {wrong.size} of {self.size} bytes of the {self.kernel} copy differ "
                                     f"from the source (first at byte {int(wrong[0])})")
        return Validation(status=PASSED, max_rel_error=0.0, tolerance=0.0,
                          reason="every byte of the destination equals the source")

    def work(self) -> None:
        return None  # no FLOPs: no energy per FLOP

    def bytes_per_call(self) -> int:
        return self.size * KERNELS[self.kernel][1]

    def peak(self) -> dict | None:
        if self.kernel == "d2d":
            from ...peaks import gpu_memory_peak

            return gpu_memory_peak(cu.device_name(self.index), cu.pci_id(self.index))
        rate, source = pcie_limit(self.index)
        return None if rate is None else {"value": rate / 1e9, "unit": "GB/s", "source": source, "kind": "link"}

    def telemetry(self) -> dict | None:
        return cu.telemetry_window(self.telemetry_start, cu.telemetry_snapshot(self.index))

    def detail(self) -> dict:
        d = {"device": cu.device_name(self.index), "copy": f"cudaMemcpyAsync kind {KERNELS[self.kernel][0]}",
             "host_memory": None if self.kernel == "d2d" else "pinned (cupy.cuda.alloc_pinned_memory)",
             "l2_flush_bytes": self.flusher.nbytes, "timing": cu.TIMING_FROM_PYTHON}
        if self.peak() is None:
            d["bound"] = (pcie_limit(self.index)[1] if self.kernel != "d2d"
                          else "no independent bound: no HBM datasheet bandwidth for this GPU in peaks.py")
        return d

    def close(self) -> None:
        self.dev_src = self.dev_dst = self.pinned = self._pinned_mem = self.flusher = self.timer = None
        self.launch = None
        self.cupy.get_default_memory_pool().free_all_blocks()


IMPLS = (CudaCopy,)
