"""The cuda target: device discovery, NVML identity and telemetry, device buffers and
the event timer for library calls launched from Python (CuPy, torch).

aibench's own CUDA code (aibench._cuda) times itself with CUDA events in C++; buffers are
CuPy arrays handed over by pointer.
"""

from __future__ import annotations

import functools
import importlib.util
from typing import Any, Callable

from ..errors import SkipCase
from ..fit import fits
from . import Target

# NVML clock-event reasons. Running at the board power limit (sw_power_cap) is normal for
# a GPU at full load and is reported apart; the others (thermal, hardware slowdown, power
# brake) mean the card or its cooling is not delivering and mark the case as throttled.
_SW_POWER_CAP = 0x4
_THROTTLE_REASONS = {0x8: "hw_slowdown", 0x20: "sw_thermal", 0x40: "hw_thermal", 0x80: "hw_power_brake"}


def _preload_cublaslt() -> None:
    """Load libcublasLt from the nvidia-cublas wheel wherever pip put it: the extension's
    RPATH only covers the wheel sitting beside aibench in the same site-packages."""
    import ctypes
    import importlib.metadata as md

    try:
        files = md.files("nvidia-cublas") or []
    except md.PackageNotFoundError:
        return
    for f in files:  # pragma: no cover (needs the nvidia-cublas wheel: scripts/gpu_check.sh)
        if "libcublasLt.so" in f.name:
            try:
                ctypes.CDLL(str(f.locate()), mode=ctypes.RTLD_GLOBAL)
                return
            except OSError:
                continue


@functools.lru_cache(maxsize=1)
def cuda_module():
    """aibench._cuda, or None when this build has no CUDA module."""
    try:
        from .. import _cuda
    except ImportError:
        _preload_cublaslt()
        try:
            from .. import _cuda
        except ImportError:
            return None
    return _cuda


def unavailable_reason(target: Target) -> str | None:
    """Why the cuda target cannot run here, or None."""
    if target.kind != "cuda":
        return f"runs on the cuda target, not {target}"
    cuda = cuda_module()
    if cuda is None:
        return "aibench was built without CUDA (reinstall with AIBENCH_CUDA=ON and nvcc + cuBLASLt present)"
    count = cuda.device_count()
    if count == 0:
        return f"no CUDA GPU: {cuda.cuda_unavailable_reason()}"
    if (target.index or 0) >= count:
        return f"{target} does not exist: {count} CUDA device(s)"
    if importlib.util.find_spec("cupy") is None:
        return "CuPy is not installed (pip install 'aibench[cuda]')"
    return None


def require(target: Target):
    reason = unavailable_reason(target)
    if reason is not None:
        raise SkipCase(reason)
    return cuda_module()


@functools.lru_cache(maxsize=None)
def device_properties(index: int) -> dict[str, Any]:
    return dict(cuda_module().device_properties(index))


def _nvml_handle(index: int):
    try:
        import pynvml

        pynvml.nvmlInit()
        bus_id = device_properties(index).get("pci_bus_id")
        if bus_id:
            return pynvml, pynvml.nvmlDeviceGetHandleByPciBusId(bus_id.encode() if isinstance(bus_id, str) else bus_id)
        return pynvml, pynvml.nvmlDeviceGetHandleByIndex(index)
    except Exception:  # noqa: BLE001 - no NVML means no telemetry, said in the result
        return None, None


def device_name(index: int) -> str:
    nvml, handle = _nvml_handle(index)
    if handle is not None:
        name = nvml.nvmlDeviceGetName(handle)
        return name.decode() if isinstance(name, bytes) else name
    return device_properties(index)["name"]


def pci_id(index: int) -> str | None:
    """"vvvv:dddd" of GPU `index`: NVML's pciDeviceId (device << 16 | vendor) when NVML
    answers, else sysfs at the device's PCI bus ID; None when neither is readable. The
    peak table finds a GPU surest by it (a name can be an engineering sample's)."""
    nvml, handle = _nvml_handle(index)
    if handle is not None:
        try:
            value = int(nvml.nvmlDeviceGetPciInfo(handle).pciDeviceId)
            return f"{value & 0xFFFF:04x}:{value >> 16:04x}"
        except Exception:  # noqa: BLE001 - NVML without PCI info: sysfs below
            pass
    from ..peaks import pci_id_of

    return pci_id_of(device_properties(index).get("pci_bus_id") or "")


def peak(index: int, dtype: str) -> dict | None:
    """Datasheet peak of `dtype` on GPU `index`, found by PCI ID, else by name."""
    from ..peaks import gpu_peak

    return gpu_peak(device_name(index), dtype, pci_id(index))


# How the GPU runners are timed (the `timing` entry of their impl_detail).
TIMING_IN_CPP = {"loop": "C++ loop (aibench._cuda time_op): an L2 flush, then CUDA events around each launch, "
                         "launches enqueued without waiting, one synchronisation at the end",
                 "clock": "CUDA events (device time)"}
TIMING_FROM_PYTHON = {"loop": "Python loop (targets.cuda.event_timer): an L2 flush, then CUDA events around each "
                              "launch, launches enqueued without waiting, one synchronisation at the end",
                      "clock": "CUDA events (device time; Python only enqueues)"}


def telemetry_snapshot(index: int) -> dict[str, Any]:
    """Clocks, temperature, power and active throttle reasons, from NVML."""
    nvml, h = _nvml_handle(index)
    if h is None:
        return {"available": False, "reason": "NVML (nvidia-ml-py) not available"}
    snap: dict[str, Any] = {"available": True}
    readers = {
        "sm_clock_mhz": lambda: nvml.nvmlDeviceGetClockInfo(h, nvml.NVML_CLOCK_SM),
        "mem_clock_mhz": lambda: nvml.nvmlDeviceGetClockInfo(h, nvml.NVML_CLOCK_MEM),
        "temperature_c": lambda: nvml.nvmlDeviceGetTemperature(h, nvml.NVML_TEMPERATURE_GPU),
        "power_w": lambda: nvml.nvmlDeviceGetPowerUsage(h) / 1000.0,
        "clock_event_reasons": lambda: int(nvml.nvmlDeviceGetCurrentClocksEventReasons(h)
                                           if hasattr(nvml, "nvmlDeviceGetCurrentClocksEventReasons")
                                           else nvml.nvmlDeviceGetCurrentClocksThrottleReasons(h)),
    }
    for key, read in readers.items():
        try:
            snap[key] = read()
        except Exception:  # noqa: BLE001 - a sensor a card lacks is recorded as missing
            snap[key] = None
    bits = snap.get("clock_event_reasons") or 0
    snap["throttle_reasons"] = [name for bit, name in _THROTTLE_REASONS.items() if bits & bit]
    snap["power_capped"] = bool(bits & _SW_POWER_CAP)
    return snap


def telemetry_window(start: dict, end: dict) -> dict[str, Any]:
    return {"start": start, "end": end,
            "throttled": bool(start.get("throttle_reasons") or end.get("throttle_reasons")),
            "power_capped": bool(start.get("power_capped") or end.get("power_capped"))}


class L2Flusher:
    """A device buffer of twice the L2 size, rewritten before each timed launch to evict L2."""

    def __init__(self, index: int):
        import cupy

        self.nbytes = 2 * int(device_properties(index).get("l2_cache_bytes") or 64 * 2**20)
        self.buffer = cupy.empty(self.nbytes, dtype=cupy.uint8)
        self.ptr = self.buffer.data.ptr
        self._fill = 0

    def flush(self) -> None:
        self._fill = (self._fill + 1) & 0xFF
        self.buffer.fill(self._fill)


# The L2 flush before every launch makes each timed launch start with a cold cache (the
# figure's definition). A timer that flushes takes l2_flush=False for the sustained power
# window (energy/window.py): there the launches run back to back, as the flushes' memsets
# would be energy charged to the kernel (about 1% of J/TFLOP at 8192^3 on an H200) while
# their time is not in the kernel's seconds.


def event_timer(launch: Callable[[], Any], flusher: L2Flusher) -> Callable[..., float]:
    """Timer for a call launched from Python, as time_op in csrc/cuda/timing.cpp: before
    EVERY launch an L2 flush, then a CUDA event pair around that launch alone (the flush is
    not timed); `number` launches enqueued without waiting, one synchronisation at the
    end; the sum of the intervals. With l2_flush=False, one event pair around the
    `number` launches back to back. Python only enqueues; the GPU time is what counts. The
    timer keeps what the last launch returned as `.last` (an output it allocated)."""
    import cupy

    def timer(number: int, l2_flush: bool = True) -> float:
        events = []
        if l2_flush:
            for _ in range(number):
                flusher.flush()
                start, stop = cupy.cuda.Event(), cupy.cuda.Event()
                start.record()
                out = launch()
                stop.record()
                events.append((start, stop))
        else:
            start, stop = cupy.cuda.Event(), cupy.cuda.Event()
            start.record()
            for _ in range(number):
                out = launch()
            stop.record()
            events.append((start, stop))
        events[-1][1].synchronize()
        timer.last = out
        return sum(cupy.cuda.get_elapsed_time(start, stop) for start, stop in events) / 1e3

    return timer


def plan_timer(plan, flusher: L2Flusher, number: int, l2_flush: bool = True) -> float:
    """`number` launches of an aibench._cuda op timed in C++ (time_op), as event_timer
    times a Python launch: an L2 flush before each, or (l2_flush=False) none."""
    return plan.time(number, flusher.ptr, flusher.nbytes) if l2_flush else plan.time(number)


def free_device_bytes(index: int) -> int:
    import cupy

    with cupy.cuda.Device(index):
        free, _total = cupy.cuda.runtime.memGetInfo()
    return int(free)


def require_device_memory(need: int, target: Target, what: str) -> None:
    """SkipCase unless `need` bytes fit in 90% of the GPU's free memory (fit.fits; the rest
    is left to the CUDA context and the libraries' workspaces)."""
    reason = fits(need, free_device_bytes(target.index or 0), what, share=0.9, of=f"of GPU memory free on {target}")
    if reason:
        raise SkipCase(reason)
