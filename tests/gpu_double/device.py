"""The simulated GPU behind every fake module of the double: its memory, its clock, its
NVML state and the log of what the host asked of it.

Memory: each allocation is a numpy byte buffer registered under its real host address,
so that a pointer handed to a fake aibench._cuda op (cupy_array.data.ptr, as the real
suites do) finds the bytes of the CuPy array it came from; a pointer into no live
allocation raises, as cudaErrorIllegalAddress would.

Time: the device clock is virtual. Each kernel (a GEMM, an attention, an all-reduce, an
L2-flush memset, a fill) advances it by the seconds the test told the device that kind of
kernel takes; CUDA events record the clock where they are enqueued. A figure computed
from event pairs is therefore exactly what the test told the device, and work wrongly
inside a timed interval (an L2 flush, a fill) shows up in it.

Host/device ordering: work runs at once on the host (numpy) but an event counts as
completed only after the host waited for it (event/stream/device synchronisation), as
cudaEventElapsedTime returns cudaErrorNotReady for an event the device has not reached
(CUDA Runtime API, cudaEventElapsedTime). `log` records every fill, flush, launch and
synchronisation in order, so tests can check what was synchronised before what.
"""

from __future__ import annotations

import dataclasses
import weakref
from typing import Any

import numpy as np

H200_PCI_DEVICE_ID = 0x233510DE  # NVML's pciDeviceId: device << 16 | vendor (10de:2335, H200 SXM)


class CudaRuntimeError(RuntimeError):
    """What cupy_backends.cuda.api.runtime.CUDARuntimeError looks like: the error name first."""


@dataclasses.dataclass
class GpuSpec:
    """One simulated board: what cudaGetDeviceProperties and NVML say about it."""

    name: str = "NVIDIA H200"
    pci_bus_id: str = "00000000:19:00.0"
    pci_device_id: int = H200_PCI_DEVICE_ID
    major: int = 9
    minor: int = 0
    multiprocessors: int = 132
    l2_cache_bytes: int = 64 * 2**10  # H200: 50 MiB; small here, as every timed launch rewrites twice this
    total_memory_bytes: int = 141 * 2**30
    free_memory_bytes: int = 140 * 2**30
    vbios: str = "96.00.AF.00.01"
    # NVML readings
    sm_clock_mhz: int = 1980
    mem_clock_mhz: int = 3201
    temperature_c: int = 41
    power_mw: int = 350_000  # nvmlDeviceGetPowerUsage while busy
    clock_event_reasons: int = 0  # nvmlClocksEventReason bits
    enforced_power_limit_mw: int = 700_000
    applications_clocks_mhz: tuple[int, int] = (1980, 3201)  # (sm, mem)
    ecc: tuple[int, int] = (1, 1)  # (current, pending)
    mig: tuple[int, int] = (0, 0)
    persistence: int = 1
    energy_counter: bool = True  # Volta+: nvmlDeviceGetTotalEnergyConsumption
    pcie_max_link: tuple[int, int] = (5, 16)  # nvmlDeviceGetMaxPcieLinkGeneration, ...Width
    # Active NVLinks (H200 SXM: 18; 0: a PCIe card) and their nvmlDeviceGetNvLinkVersion, an
    # nvmlNvlinkVersion_t (nvml.h): 6 is NVLINK_VERSION_4_0, 7 5_0 (B200).
    nvlink_links: int = 18
    nvlink_version: int = 6


def boards(count: int) -> list[GpuSpec]:
    """`count` H200s of one node, on consecutive PCI buses from 0x19 (as cuda:0, cuda:1, ...)."""
    return [GpuSpec(pci_bus_id=f"00000000:{0x19 + i:02x}:00.0") for i in range(count)]


class SimulatedGpus:
    """The state of the double: boards, memory, virtual clock, told kernel times, log."""

    def __init__(self, specs: list[GpuSpec] | None = None):
        self.specs = specs if specs is not None else [GpuSpec()]
        self.current = 0  # cudaSetDevice
        self.clock_ns = 0  # the virtual device clock, in integer nanoseconds (no rounding drift)
        # Seconds one kernel of each kind takes on the device (what the test tells it).
        self.kernel_seconds: dict[str, float] = {"gemm": 1e-3, "attention": 2e-3, "allreduce": 1e-4,
                                                 "flush": 5e-5, "fill": 1e-5, "copy": 1e-6}
        # Per board, what differs from kernel_seconds (a slower GPU among equals): {device: {kind: s}}.
        self.device_kernel_seconds: dict[int, dict[str, float]] = {}
        # Node-wide software, as NVML's nvmlSystemGetDriverVersion and ncclGetVersion give it.
        self.driver_version = "570.133.20"
        self.nccl_version = 22805
        self.energy_mj = [0.0 for _ in self.specs]  # nvmlDeviceGetTotalEnergyConsumption
        self.allocations: dict[int, weakref.ref] = {}  # address -> byte buffer (alive while an array holds it)
        self.log: list[tuple[str, str]] = []  # (what, detail) in the order the host asked
        self.launches: dict[str, int] = {}  # kernel kind -> count
        self.pending_events: list[Any] = []  # recorded, not yet waited for
        # Writes to device memory so far (not counting L2-flush memsets): an op whose
        # inputs and output nobody wrote since its last launch need not compute again
        # (its output is still there), which keeps thousands of timed launches cheap.
        self.writes = 0

    # --- memory ---------------------------------------------------------------------

    def allocate(self, nbytes: int) -> np.ndarray:
        buffer = np.zeros(max(int(nbytes), 1), dtype=np.uint8)
        self.allocations[buffer.ctypes.data] = weakref.ref(buffer)
        return buffer

    def view(self, ptr: int, count: int, dtype) -> np.ndarray:
        """`count` elements of `dtype` at device address `ptr`, writable."""
        dtype = np.dtype(dtype)
        nbytes = count * dtype.itemsize
        for base, ref in list(self.allocations.items()):
            buffer = ref()
            if buffer is None:  # freed: its address may be handed out again
                del self.allocations[base]
                continue
            if base <= ptr and ptr + nbytes <= base + buffer.nbytes:
                return buffer[ptr - base: ptr - base + nbytes].view(dtype)
        raise CudaRuntimeError(f"cudaErrorIllegalAddress: an illegal memory access was encountered "
                               f"({nbytes} bytes at {ptr:#x} are in no live allocation)")

    # --- work and time --------------------------------------------------------------

    def kernel(self, kind: str, detail: str = "", device: int | None = None) -> None:
        """One kernel of `kind` runs on `device` (default: the current one, as for a launch
        on the current device's stream): the clock moves by its told time, the board's
        energy counter by its power over that time."""
        device = self.current if device is None else device
        seconds = self.device_kernel_seconds.get(device, {}).get(kind, self.kernel_seconds[kind])
        ns = round(seconds * 1e9)
        self.clock_ns += ns
        self.energy_mj[device] += self.specs[device].power_mw * ns / 1e9
        self.launches[kind] = self.launches.get(kind, 0) + 1
        self.log.append((kind, detail))

    def wrote(self) -> None:
        self.writes += 1

    def synchronize(self, what: str, upto: int | None = None) -> None:
        """The host waited: for the first `upto` pending events (those recorded up to the
        point waited for, streams being in order), or for everything."""
        upto = len(self.pending_events) if upto is None else upto
        for event in self.pending_events[:upto]:
            event.completed = True
        del self.pending_events[:upto]
        self.log.append(("sync", what))

    def count(self, kind: str) -> int:
        return self.launches.get(kind, 0)

    def kinds_in_log(self) -> list[str]:
        return [what for what, _ in self.log]
