"""Energy meters behind one interface, and the sustained measurement window.

A meter reports the energy (joules) consumed over a window, its update period, its
source and its scope (GPU board, CPU package, DRAM, whole node). Counter meters (RAPL,
NVML's total-energy counter) take differences of a cumulative counter; sampled meters
(IPMI DCMI, Redfish, NVML power when the counter is absent) integrate power readings
taken by a polling thread. Nothing is ever estimated from TDP: a source that cannot be
read is absent, with its reason.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass


@dataclass
class EnergyReading:
    source: str  # e.g. "rapl", "nvml", "ipmi-dcmi", "redfish"
    scope: str  # "cpu package", "dram", "gpu board", "whole node"
    name: str  # which zone / device, e.g. "package-0", "GPU 0 NVIDIA H200"
    joules: float
    seconds: float
    update_period_s: float
    read_seconds: float = 0.0  # time spent reading the source during the window


    @property
    def watts(self) -> float:
        return self.joules / self.seconds if self.seconds > 0 else float("nan")


class EnergyMeter:
    """One energy source. start() opens a window, stop() closes it and returns the energy."""

    source = ""
    scope = ""
    name = ""
    update_period_s = 1.0

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> EnergyReading:
        raise NotImplementedError

    def power_limit_w(self) -> float | None:
        """The power limit the metered device is held to (W), where the source tells it
        (NVML: the board's enforced limit); None where it does not."""
        return None


class CounterMeter(EnergyMeter):
    """A cumulative energy counter in joules, possibly wrapping at `wrap_joules`. A
    polling thread reads it often enough that at most one wrap happens between reads."""

    wrap_joules: float | None = None
    poll_s = 0.5

    def read_joules(self) -> float:
        raise NotImplementedError

    def start(self) -> None:
        self._lock = threading.Lock()
        self._total = 0.0
        self._read_s = 0.0
        self._last = self.read_joules()
        self._t0 = time.perf_counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()

    def _accumulate(self) -> None:
        started = time.perf_counter()
        now = self.read_joules()
        self._read_s += time.perf_counter() - started
        with self._lock:
            delta = now - self._last
            if delta < 0 and self.wrap_joules:
                delta += self.wrap_joules  # the counter wrapped once since the last read
            self._total += max(delta, 0.0)
            self._last = now

    def _poll(self) -> None:
        while not self._stop.wait(self.poll_s):
            self._accumulate()

    def stop(self) -> EnergyReading:
        self._stop.set()
        self._thread.join()
        self._accumulate()
        seconds = time.perf_counter() - self._t0
        return EnergyReading(self.source, self.scope, self.name, self._total, seconds, self.update_period_s,
                             self._read_s)


class SampledPowerMeter(EnergyMeter):
    """Power readings (watts) integrated over time (trapezoids) by a polling thread."""

    def read_watts(self) -> float:
        raise NotImplementedError

    def _sample(self) -> None:
        started = time.perf_counter()
        watts = self.read_watts()
        self._read_s += time.perf_counter() - started
        self._samples.append((started, watts))

    def start(self) -> None:
        self._samples: list[tuple[float, float]] = []
        self._read_s = 0.0
        self._sample()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        while not self._stop.wait(self.update_period_s):
            self._sample()

    def stop(self) -> EnergyReading:
        self._stop.set()
        self._thread.join()
        self._sample()
        joules = sum((t1 - t0) * (w0 + w1) / 2 for (t0, w0), (t1, w1) in zip(self._samples, self._samples[1:]))
        seconds = self._samples[-1][0] - self._samples[0][0]
        return EnergyReading(self.source, self.scope, self.name, joules, seconds, self.update_period_s, self._read_s)
