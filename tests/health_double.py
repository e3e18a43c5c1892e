"""NVML's window-health queries on the device double (tests/gpu_double): violation
counters, volatile ECC counts, XID events through an event set and the maximum SM clock,
with the names and units of NVML's API reference and nvidia-ml-py's pynvml.py
(nvmlDeviceGetViolationStatus: violationTime in ns; nvmlDeviceGetTotalEccErrors;
nvmlEventSetCreate / nvmlDeviceRegisterEvents / nvmlEventSetWait_v2, which raises
NVMLError_Timeout when no event is queued). `add(monkeypatch, gpus)` adds them to the fake
pynvml that gpu_double.install put in sys.modules, and returns the boards' health state:
a test makes a board throttle or log errors *while kernels run*, which is what the
window's before/after readings must catch even when the clock-event reasons read at the
window's start and end are clear."""

from __future__ import annotations

import dataclasses
import sys
import types

NVML_EVENT_TYPE_XID = 0x8  # nvmlEventTypeXidCriticalError


@dataclasses.dataclass
class BoardHealth:
    violation_ns: dict = dataclasses.field(default_factory=lambda: {"power": 0, "thermal": 0})
    ecc: dict = dataclasses.field(default_factory=lambda: {"corrected": 0, "uncorrected": 0})
    max_sm_clock_mhz: int = 1980
    # What happens while a kernel runs: throttled by these reasons for its whole time,
    # these ECC errors counted.
    throttling: tuple = ()
    ecc_per_kernel: dict = dataclasses.field(default_factory=dict)
    xid_on_kernel: int | None = None  # posted at the first kernel an event set listens to
    xid_events_supported: bool = True


class NVMLError_Timeout(Exception):  # noqa: N801 - pynvml's name
    def __str__(self):
        return "Timeout"


def add(monkeypatch, gpus) -> list[BoardHealth]:
    nvml = sys.modules["pynvml"]
    boards = [BoardHealth() for _ in gpus.specs]
    event_sets: list[dict] = []
    original = gpus.kernel

    def kernel(*args, **kwargs):
        device = args[2] if len(args) > 2 else kwargs.get("device")  # kernel(kind, detail, device)
        device = gpus.current if device is None else device
        before = gpus.clock_ns
        original(*args, **kwargs)
        board = boards[device]
        for reason in board.throttling:
            board.violation_ns[reason] += gpus.clock_ns - before
        for kind, count in board.ecc_per_kernel.items():
            board.ecc[kind] += count
        listening = [s for s in event_sets if device in s["devices"]]
        if board.xid_on_kernel is not None and listening:  # posted during a window that listens
            for s in listening:
                s["queue"].append(board.xid_on_kernel)
            board.xid_on_kernel = None

    def register(handle, mask, event_set):
        if not boards[handle[1]].xid_events_supported:
            raise nvml.NVMLError_NotSupported()
        if mask & NVML_EVENT_TYPE_XID:
            event_set["devices"].add(handle[1])

    def wait(event_set, timeout_ms):
        if not event_set["queue"]:
            raise NVMLError_Timeout()
        return types.SimpleNamespace(eventType=NVML_EVENT_TYPE_XID, eventData=event_set["queue"].pop(0))

    def create():
        event_sets.append({"devices": set(), "queue": []})
        return event_sets[-1]

    policies = {0: "power", 1: "thermal"}
    values = {
        "NVML_PERF_POLICY_POWER": 0, "NVML_PERF_POLICY_THERMAL": 1, "NVML_MEMORY_ERROR_TYPE_CORRECTED": 0,
        "NVML_MEMORY_ERROR_TYPE_UNCORRECTED": 1, "NVML_VOLATILE_ECC": 0,
        "nvmlEventTypeXidCriticalError": NVML_EVENT_TYPE_XID, "NVMLError_Timeout": NVMLError_Timeout,
        "nvmlDeviceGetViolationStatus": lambda h, policy: types.SimpleNamespace(
            referenceTime=gpus.clock_ns // 1000, violationTime=boards[h[1]].violation_ns[policies[policy]]),
        "nvmlDeviceGetTotalEccErrors": lambda h, kind, counter: boards[h[1]].ecc[("corrected", "uncorrected")[kind]],
        "nvmlDeviceGetMaxClockInfo": lambda h, kind: boards[h[1]].max_sm_clock_mhz,
        "nvmlEventSetCreate": create, "nvmlDeviceRegisterEvents": register, "nvmlEventSetWait_v2": wait,
        "nvmlEventSetFree": lambda event_set: event_sets.remove(event_set),
    }
    for name, value in values.items():
        monkeypatch.setattr(nvml, name, value, raising=False)
    monkeypatch.setattr(gpus, "kernel", kernel)
    return boards
