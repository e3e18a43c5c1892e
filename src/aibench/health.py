"""The health of a case's own timed window (issue #30 item 2; docs/result-schema.md, `health`).

A figure measured while the clock was throttled, or while the device logged errors, is not
the node's figure. The case template (suites/base.py) reads the device before and after
the timed samples of each case and stores what changed in the case's `health`:

- GPU (cuda target, NVML): the time NVML's violation counters counted in the window by
  reason (`thermal`, `power_cap`: nvmlDeviceGetViolationStatus), the clock-event reasons
  active at its start or end (nvmlDeviceGetCurrentClocksEventReasons), the SM clock at its
  end against the board's maximum, the power drawn at its end against the enforced limit,
  volatile ECC error counts (corrected, uncorrected) before and after, and the XIDs the
  driver posted during it (an NVML event set);
- CPU (cpu target, sysfs): the thermal-throttle counters of the CPUs the process may use
  (`thermal_throttle/{core,package}_throttle_count`, and `_total_time_ms` where the kernel
  has it) and EDAC's memory-controller error counts, before and after; the clock measured
  right after the window's last sample against the clock measured at the run's start
  (targets/cpu.py).

Anything unreadable is recorded as unknown with the reason (`<part>_unknown`), never as
zero. window_problems() judges a record against a spec's `health` requirement; what it
cannot judge for lack of data is reported apart from what failed, so that accept can
fail closed on both.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

# Where the CPU's sysfs counters are (tests point these at a directory of their own).
CPU_SYSFS = Path("/sys/devices/system/cpu")
EDAC_SYSFS = Path("/sys/devices/system/edac/mc")

# nvmlClocksEventReason bits (nvml.h). SwPowerCap is the board holding its enforced power
# limit, as designed under a dense load; the others are slowdowns a healthy board in a
# working chassis does not show.
CLOCK_EVENT_REASONS = {0x4: "sw_power_cap", 0x8: "hw_slowdown", 0x20: "sw_thermal", 0x40: "hw_thermal",
                       0x80: "hw_power_brake"}
SLOWDOWN_REASONS = ("hw_slowdown", "sw_thermal", "hw_thermal", "hw_power_brake")
# How long the CPU clock is measured after the window (a dependency chain on one core).
CLOCK_PROBE_S = 0.05
# What a spec's `health` table may require (docs/accept.md, "Health in the window").
REQUIREMENT_KEYS = ("throttle_s_max", "ecc_new_max", "clock_min_fraction")


def _nvml_error(e: Exception) -> str:
    return f"{type(e).__name__}: {e}".rstrip(": ")


class _GpuWindow:
    """NVML readings of one board around a window."""

    def __init__(self, index: int):
        from .targets import cuda as cu

        self.index = index
        self.nvml, self.handle = cu._nvml_handle(index)
        self.events = None
        self.events_unknown: str | None = None
        if self.handle is None:
            return
        self.before = self._counters()
        self.reasons_start = self._reasons()
        try:  # registered before the window: every XID the driver posts during it is queued
            self.events = self.nvml.nvmlEventSetCreate()
            self.nvml.nvmlDeviceRegisterEvents(self.handle, self.nvml.nvmlEventTypeXidCriticalError, self.events)
        except Exception as e:  # noqa: BLE001 - a driver without XID events: unknown, with why
            self.events_unknown = f"NVML XID events: {_nvml_error(e)}"
            self._free_events()

    def _free_events(self) -> None:
        if self.events is not None:
            try:
                self.nvml.nvmlEventSetFree(self.events)
            except Exception:  # noqa: BLE001 - freeing is best effort
                pass
        self.events = None

    def _reasons(self) -> int | None:
        try:
            return int(self.nvml.nvmlDeviceGetCurrentClocksEventReasons(self.handle))
        except Exception:  # noqa: BLE001 - recorded as unknown by the caller
            return None

    def _counters(self) -> dict[str, Any]:
        """Violation time (ns) and ECC counts, each a number or the reason it is unreadable."""
        nv, h = self.nvml, self.handle
        out: dict[str, Any] = {}
        for reason, policy in (("thermal", "NVML_PERF_POLICY_THERMAL"), ("power_cap", "NVML_PERF_POLICY_POWER")):
            try:
                out[reason] = int(nv.nvmlDeviceGetViolationStatus(h, getattr(nv, policy)).violationTime)
            except Exception as e:  # noqa: BLE001
                out[reason] = f"NVML violation status ({reason}): {_nvml_error(e)}"
        for kind, error_type in (("corrected", "NVML_MEMORY_ERROR_TYPE_CORRECTED"),
                                 ("uncorrected", "NVML_MEMORY_ERROR_TYPE_UNCORRECTED")):
            try:
                out[kind] = int(nv.nvmlDeviceGetTotalEccErrors(h, getattr(nv, error_type), nv.NVML_VOLATILE_ECC))
            except Exception as e:  # noqa: BLE001
                out[kind] = f"NVML ECC counts ({kind}): {_nvml_error(e)}"
        return out

    def _xids(self) -> list[int]:
        nv, codes = self.nvml, []
        timeout = getattr(nv, "NVMLError_Timeout", ())
        while True:
            try:
                data = nv.nvmlEventSetWait_v2(self.events, 0)
            except timeout:
                return codes
            if data.eventType & nv.nvmlEventTypeXidCriticalError:
                codes.append(int(data.eventData))

    def finish(self, window_s: float) -> dict[str, Any]:
        if self.handle is None:
            return {"source": "nvml", "window_s": window_s, "unknown": "NVML (nvidia-ml-py) not available"}
        nv, h = self.nvml, self.handle
        after = self._counters()
        reasons_end = self._reasons()
        record: dict[str, Any] = {"source": "nvml", "device": self.index, "window_s": window_s}
        throttle, unknown = {}, []
        for reason in ("thermal", "power_cap"):
            if isinstance(self.before[reason], int) and isinstance(after[reason], int):
                throttle[reason] = (after[reason] - self.before[reason]) / 1e9
            else:
                unknown.append(next(x for x in (self.before[reason], after[reason]) if isinstance(x, str)))
        record["throttle_s"] = throttle
        record["throttle_unknown"] = "; ".join(unknown) or None
        if self.reasons_start is None or reasons_end is None:
            record["clock_event_reasons"] = None
            record["throttle_unknown"] = "; ".join(filter(None, [record["throttle_unknown"],
                                                                 "NVML clock-event reasons unreadable"]))
        else:
            bits = self.reasons_start | reasons_end
            record["clock_event_reasons"] = [name for bit, name in CLOCK_EVENT_REASONS.items() if bits & bit]
        ecc, ecc_unknown = {}, []
        for kind in ("corrected", "uncorrected"):
            if isinstance(self.before[kind], int) and isinstance(after[kind], int):
                ecc[kind] = {"before": self.before[kind], "after": after[kind]}
            else:
                ecc_unknown.append(next(x for x in (self.before[kind], after[kind]) if isinstance(x, str)))
        record["ecc"] = ecc or None
        record["ecc_unknown"] = "; ".join(ecc_unknown) or None
        if self.events is not None:
            try:
                codes = self._xids()
                record["xid"] = {"new": len(codes), "codes": codes}
                record["xid_unknown"] = None
            except Exception as e:  # noqa: BLE001
                record["xid"], record["xid_unknown"] = None, f"NVML XID events: {_nvml_error(e)}"
            self._free_events()
        else:
            record["xid"], record["xid_unknown"] = None, self.events_unknown
        try:
            clock = nv.nvmlDeviceGetClockInfo(h, nv.NVML_CLOCK_SM)
            top = nv.nvmlDeviceGetMaxClockInfo(h, nv.NVML_CLOCK_SM)
            record["clock"] = {"value": clock, "max": top, "unit": "MHz", "fraction": clock / top if top else None,
                               "what": "SM clock at the window's end, against the board's maximum"}
            record["clock_unknown"] = None
        except Exception as e:  # noqa: BLE001
            record["clock"], record["clock_unknown"] = None, f"NVML SM clock: {_nvml_error(e)}"
        try:
            watts = nv.nvmlDeviceGetPowerUsage(h) / 1e3
            limit = nv.nvmlDeviceGetEnforcedPowerLimit(h) / 1e3
            record["power"] = {"watts": watts, "limit_w": limit, "fraction": watts / limit if limit else None,
                               "what": "board power at the window's end, against the enforced limit"}
        except Exception as e:  # noqa: BLE001
            record["power"] = {"unknown": f"NVML power: {_nvml_error(e)}"}
        return record


def _allowed_cpus() -> list[int]:
    return sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else list(range(os.cpu_count() or 1))


def _read_int(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def _cpu_counters() -> dict[str, dict[int, int]]:
    """thermal_throttle counters per allowed CPU: {file name: {cpu: value}} of the files present."""
    out: dict[str, dict[int, int]] = {}
    for cpu in _allowed_cpus():
        d = CPU_SYSFS / f"cpu{cpu}" / "thermal_throttle"
        for name in ("core_throttle_count", "package_throttle_count", "core_throttle_total_time_ms",
                     "package_throttle_total_time_ms"):
            value = _read_int(d / name)
            if value is not None:
                out.setdefault(name, {})[cpu] = value
    return out


def _edac_counts() -> dict[str, int] | None:
    """Memory-controller ECC counts summed over EDAC's controllers, or None without EDAC."""
    controllers = sorted(EDAC_SYSFS.glob("mc[0-9]*")) if EDAC_SYSFS.is_dir() else []
    counts = {"corrected": 0, "uncorrected": 0}
    for mc in controllers:
        for kind, name in (("corrected", "ce_count"), ("uncorrected", "ue_count")):
            value = _read_int(mc / name)
            if value is None:
                return None
            counts[kind] += value
    return counts if controllers else None


class _CpuWindow:
    """sysfs readings of the CPUs around a window, and the clock right after it."""

    def __init__(self):
        self.before = _cpu_counters()
        self.ecc_before = _edac_counts()

    def finish(self, window_s: float) -> dict[str, Any]:
        from .targets import cpu as cpu_target

        after = _cpu_counters()
        record: dict[str, Any] = {"source": "sysfs", "window_s": window_s}
        if "core_throttle_count" not in self.before or "core_throttle_count" not in after:
            record["throttle_events"] = record["throttle_s"] = None
            record["throttle_unknown"] = (f"no {CPU_SYSFS}/cpu*/thermal_throttle counters (a VM, or a CPU whose "
                                          "kernel driver does not expose them)")
        else:
            def new(name: str) -> int | None:
                b, a = self.before.get(name), after.get(name)
                return None if b is None or a is None else max((a[c] - b[c] for c in a if c in b), default=0)

            # Per CPU, the most any one CPU (or its package) counted: the counters are per CPU,
            # and the package ones repeat on every CPU of the package.
            record["throttle_events"] = {"core": new("core_throttle_count"), "package": new("package_throttle_count")}
            times = {"core": new("core_throttle_total_time_ms"), "package": new("package_throttle_total_time_ms")}
            record["throttle_s"] = ({k: v / 1e3 for k, v in times.items() if v is not None}
                                    if any(v is not None for v in times.values()) else None)
            # Without the time files, no event means no throttle time; events without their
            # time are judged as throttling of unknown length (window_problems).
            record["throttle_unknown"] = None
        ecc_after = _edac_counts()
        if self.ecc_before is None or ecc_after is None:
            record["ecc"], record["ecc_unknown"] = None, f"no EDAC memory controller under {EDAC_SYSFS}"
        else:
            record["ecc"] = {k: {"before": self.ecc_before[k], "after": ecc_after[k]} for k in ecc_after}
            record["ecc_unknown"] = None
        record["xid"], record["xid_unknown"] = None, "XIDs are GPU driver events (none on the cpu target)"
        try:
            from . import _core

            clock = _core.measure_clock_ghz(CLOCK_PROBE_S)
            top = cpu_target.measured_clock_ghz()
            record["clock"] = {"value": clock, "max": top, "unit": "GHz", "fraction": clock / top if top else None,
                               "what": f"clock measured for {CLOCK_PROBE_S:g} s right after the window's last "
                                       "sample, against the clock measured at the run's start"}
            record["clock_unknown"] = None
        except Exception as e:  # noqa: BLE001 - no clock reading: unknown, with why
            record["clock"], record["clock_unknown"] = None, f"CPU clock: {type(e).__name__}: {e}"
        return record


class HealthWindow:
    """Read the device before a case's timed window (start) and after it (finish)."""

    def __init__(self, target):
        self.kind = target.kind
        self.started = time.perf_counter()
        if target.kind == "cuda":
            self.device: _GpuWindow | _CpuWindow | None = _GpuWindow(target.index or 0)
        elif target.kind == "cpu":
            self.device = _CpuWindow()
        else:
            self.device = None

    def finish(self) -> dict[str, Any]:
        window_s = time.perf_counter() - self.started
        if self.device is None:
            return {"source": None, "window_s": window_s,
                    "unknown": f"no health source for the {self.kind} target (NVML: cuda; sysfs: cpu)"}
        return self.device.finish(window_s)


# ---- judging ------------------------------------------------------------------------------


def _new_errors(record: dict[str, Any]) -> int:
    ecc = sum(c["after"] - c["before"] for c in (record.get("ecc") or {}).values())
    return ecc + ((record.get("xid") or {}).get("new") or 0)


def window_problems(record: dict[str, Any] | None, required: dict[str, float]) -> tuple[list[str], list[str]]:
    """(why the window was unhealthy, what the requirement needs that the record lacks),
    against a spec's `health` requirement (REQUIREMENT_KEYS). Both empty: healthy. A
    record of the wrong shape (an edited document) is what the record lacks."""
    try:
        return _window_problems(record, required)
    except (TypeError, ValueError, AttributeError, KeyError) as e:
        return [], [f"the health record is not one aibench writes ({type(e).__name__}: {e})"]


def _window_problems(record: dict[str, Any] | None, required: dict[str, float]) -> tuple[list[str], list[str]]:
    if record is None:
        return [], ["no health record of the case's window (a run by an aibench before #30, or a suite "
                    "that measures outside the case template)"]
    if record.get("unknown"):
        return [], [record["unknown"]]
    unhealthy, unknown = [], []
    if "throttle_s_max" in required:
        limit = required["throttle_s_max"]
        slowdowns = [r for r in (record.get("clock_event_reasons") or []) if r in SLOWDOWN_REASONS]
        thermal = {k: v for k, v in (record.get("throttle_s") or {}).items() if k != "power_cap"}
        events = {k: v for k, v in (record.get("throttle_events") or {}).items() if v}
        if slowdowns:
            unhealthy.append(f"clock slowdown ({', '.join(slowdowns)}) active at the window's start or end")
        if sum(thermal.values()) > limit:
            unhealthy.append("throttled " + ", ".join(f"{k} {v:.3g} s" for k, v in thermal.items() if v)
                             + f" in the {record['window_s']:.3g} s window (at most {limit:g} s)")
        elif events and not thermal:  # counted, time not recorded: not known to be within the limit
            unhealthy.append("thermal-throttle events in the window (" + ", ".join(f"{k} {v}" for k, v in events.items())
                             + "), their time not recorded")
        if record.get("throttle_unknown") and not unhealthy:
            unknown.append(record["throttle_unknown"])
    if "ecc_new_max" in required:
        for part in ("ecc_unknown", "xid_unknown"):
            if record.get(part) and not (part == "xid_unknown" and record.get("source") == "sysfs"):
                unknown.append(record[part])
        new = _new_errors(record)
        if new > required["ecc_new_max"]:
            codes = (record.get("xid") or {}).get("codes") or []
            unhealthy.append(f"{new} new error(s) in the window (ECC "
                             + ", ".join(f"{k} {c['after'] - c['before']}" for k, c in (record.get('ecc') or {}).items())
                             + (f"; XID {', '.join(map(str, codes))}" if codes else "")
                             + f"; at most {required['ecc_new_max']:g})")
    if "clock_min_fraction" in required:
        clock = record.get("clock")
        if not clock or clock.get("fraction") is None:
            unknown.append(record.get("clock_unknown") or "no clock reading of the window")
        elif clock["fraction"] < required["clock_min_fraction"]:
            unhealthy.append(f"clock {clock['value']:.4g} {clock['unit']} is {clock['fraction']:.0%} of "
                             f"{clock['max']:.4g} {clock['unit']} (at least {required['clock_min_fraction']:.0%})")
    return unhealthy, unknown
