"""NVML: a GPU board's total-energy counter (mJ since driver load, Volta and newer), or its
power readings integrated when the counter is absent."""

from __future__ import annotations

from . import CounterMeter, SampledPowerMeter


class _NvmlBoard:
    """A GPU board NVML meters: its handle, and the power limit NVML enforces on it."""

    def __init__(self, nvml, handle, name: str):
        self.nvml, self.handle, self.name = nvml, handle, name

    def power_limit_w(self) -> float | None:
        try:
            return self.nvml.nvmlDeviceGetEnforcedPowerLimit(self.handle) / 1e3
        except Exception:  # noqa: BLE001 - a board that does not tell its limit: none known
            return None


class NvmlEnergy(_NvmlBoard, CounterMeter):
    source = "nvml"
    scope = "gpu board"
    update_period_s = 0.1  # the counter updates every 20-100 ms
    poll_s = 1.0

    def read_joules(self) -> float:
        return self.nvml.nvmlDeviceGetTotalEnergyConsumption(self.handle) / 1e3


class NvmlPower(_NvmlBoard, SampledPowerMeter):
    source = "nvml-power"
    scope = "gpu board"
    update_period_s = 0.1

    def read_watts(self) -> float:
        return self.nvml.nvmlDeviceGetPowerUsage(self.handle) / 1e3


def discover(device_index: int, pci_bus_id: str | None) -> tuple[list, list[str]]:
    try:
        import pynvml as nvml

        nvml.nvmlInit()
        handle = (nvml.nvmlDeviceGetHandleByPciBusId(pci_bus_id) if pci_bus_id
                  else nvml.nvmlDeviceGetHandleByIndex(device_index))
        name = nvml.nvmlDeviceGetName(handle)
        name = f"GPU {device_index} {name.decode() if isinstance(name, bytes) else name}"
    except Exception as e:  # noqa: BLE001 - no NVML: no GPU energy, with the reason
        return [], [f"NVML: {e}"]
    try:
        nvml.nvmlDeviceGetTotalEnergyConsumption(handle)
        return [NvmlEnergy(nvml, handle, name)], []
    except Exception:  # noqa: BLE001 - pre-Volta: integrate power samples instead
        try:
            nvml.nvmlDeviceGetPowerUsage(handle)
            return [NvmlPower(nvml, handle, name)], []
        except Exception as e:  # noqa: BLE001
            return [], [f"NVML: {name} reports neither energy nor power ({e})"]
