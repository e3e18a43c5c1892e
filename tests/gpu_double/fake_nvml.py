"""A fake `pynvml` (nvidia-ml-py) on the simulated GPU. Names, units and constants as in
NVML's API reference (docs.nvidia.com/deploy/nvml-api) and nvidia-ml-py's pynvml.py:
power in milliwatts, energy in millijoules since driver load, clocks in MHz, ECC and MIG
modes as [current, pending], clock-event reason bits (nvmlClocksEventReason*: 0x4
SwPowerCap, 0x8 HwSlowdown, 0x20 SwThermalSlowdown, 0x40 HwThermalSlowdown, 0x80
HwPowerBrakeSlowdown); strings are str (nvidia-ml-py >= 11.515 decodes them); a query a
board does not support raises NVMLError_NotSupported. NVLink: nvmlDeviceGetNvLinkState gives
NVML_FEATURE_ENABLED (1) for links below the board's count; a board with none answers
NOT_SUPPORTED for every link, and a link at or past its count (or NVML_NVLINK_MAX_LINKS)
INVALID_ARGUMENT, as nvml.h documents; nvmlDeviceGetNvLinkVersion gives nvml.h's
nvmlNvlinkVersion_t (6 = NVLINK_VERSION_4_0)."""

from __future__ import annotations

from .device import SimulatedGpus


class NVMLError(Exception):
    value = None  # pynvml's NVMLError carries nvml.h's return code in `value`


class NVMLError_NotSupported(NVMLError):  # noqa: N801 - pynvml's name
    value = 3  # NVML_ERROR_NOT_SUPPORTED

    def __str__(self):
        return "Not Supported"


class NVMLError_InvalidArgument(NVMLError):  # noqa: N801
    value = 2  # NVML_ERROR_INVALID_ARGUMENT

    def __str__(self):
        return "Invalid Argument"


class NVMLError_Uninitialized(NVMLError):  # noqa: N801
    def __str__(self):
        return "Uninitialized"


class NVMLError_NotFound(NVMLError):  # noqa: N801
    def __str__(self):
        return "Not Found"


class _PciInfo:
    def __init__(self, bus_id: str, device_id: int):
        self.busId, self.pciDeviceId = bus_id, device_id


def _bus_fields(bus_id) -> tuple[int, ...]:
    """domain:bus:device.function, each hexadecimal (NVML accepts 4- and 8-digit domains)."""
    text = bus_id.decode() if isinstance(bus_id, bytes) else bus_id
    domain, bus, rest = text.split(":")
    device, function = rest.split(".")
    return tuple(int(x, 16) for x in (domain, bus, device, function))


def build(gpus: SimulatedGpus):
    from .fake_cupy import _module

    m = _module("pynvml")
    state = {"initialised": False}
    m.NVMLError, m.NVMLError_NotSupported, m.NVMLError_NotFound = NVMLError, NVMLError_NotSupported, NVMLError_NotFound
    m.NVMLError_InvalidArgument = NVMLError_InvalidArgument
    m.NVML_FEATURE_DISABLED, m.NVML_FEATURE_ENABLED = 0, 1
    m.NVML_NVLINK_MAX_LINKS = 18
    m.NVML_ERROR_INVALID_ARGUMENT, m.NVML_ERROR_NOT_SUPPORTED = 2, 3
    m.NVML_CLOCK_GRAPHICS, m.NVML_CLOCK_SM, m.NVML_CLOCK_MEM, m.NVML_CLOCK_VIDEO = 0, 1, 2, 3
    m.NVML_TEMPERATURE_GPU = 0

    def handle(i):
        if not state["initialised"]:
            raise NVMLError_Uninitialized()
        return ("nvml-handle", i)

    def spec(h):
        if not state["initialised"]:
            raise NVMLError_Uninitialized()
        return gpus.specs[h[1]]

    def init():
        state["initialised"] = True

    def by_bus_id(bus_id):
        wanted = _bus_fields(bus_id)
        for i, s in enumerate(gpus.specs):
            if _bus_fields(s.pci_bus_id) == wanted:
                return handle(i)
        raise NVMLError_NotFound()

    def by_index(i):
        if not 0 <= i < len(gpus.specs):
            raise NVMLError("Invalid Argument")
        return handle(i)

    def energy(h):
        if not spec(h).energy_counter:
            raise NVMLError_NotSupported()
        return int(gpus.energy_mj[h[1]])

    def clock(h, kind):
        s = spec(h)
        return {m.NVML_CLOCK_SM: s.sm_clock_mhz, m.NVML_CLOCK_GRAPHICS: s.sm_clock_mhz,
                m.NVML_CLOCK_MEM: s.mem_clock_mhz}[kind]

    def applications_clock(h, kind):
        sm, mem = spec(h).applications_clocks_mhz
        return {m.NVML_CLOCK_SM: sm, m.NVML_CLOCK_GRAPHICS: sm, m.NVML_CLOCK_MEM: mem}[kind]

    def nvlink(h, link):
        s = spec(h)
        if not s.nvlink_links:
            raise NVMLError_NotSupported()
        if not 0 <= link < min(s.nvlink_links, m.NVML_NVLINK_MAX_LINKS):
            raise NVMLError_InvalidArgument()
        return s

    m.nvmlInit = init
    m.nvmlShutdown = lambda: state.update(initialised=False)
    m.nvmlSystemGetDriverVersion = lambda: gpus.driver_version
    m.nvmlDeviceGetCount = lambda: len(gpus.specs)
    m.nvmlDeviceGetHandleByIndex = by_index
    m.nvmlDeviceGetHandleByPciBusId = by_bus_id
    m.nvmlDeviceGetName = lambda h: spec(h).name
    m.nvmlDeviceGetPciInfo = lambda h: _PciInfo(spec(h).pci_bus_id, spec(h).pci_device_id)
    m.nvmlDeviceGetClockInfo = clock
    m.nvmlDeviceGetApplicationsClock = applications_clock
    m.nvmlDeviceGetTemperature = lambda h, sensor: spec(h).temperature_c
    m.nvmlDeviceGetPowerUsage = lambda h: spec(h).power_mw
    m.nvmlDeviceGetTotalEnergyConsumption = energy
    m.nvmlDeviceGetCurrentClocksEventReasons = lambda h: spec(h).clock_event_reasons
    m.nvmlDeviceGetCurrentClocksThrottleReasons = lambda h: spec(h).clock_event_reasons
    m.nvmlDeviceGetEnforcedPowerLimit = lambda h: spec(h).enforced_power_limit_mw
    m.nvmlDeviceGetEccMode = lambda h: list(spec(h).ecc)
    m.nvmlDeviceGetMigMode = lambda h: list(spec(h).mig)
    m.nvmlDeviceGetPersistenceMode = lambda h: spec(h).persistence
    m.nvmlDeviceGetVbiosVersion = lambda h: spec(h).vbios
    m.nvmlDeviceGetMaxPcieLinkGeneration = lambda h: spec(h).pcie_max_link[0]
    m.nvmlDeviceGetMaxPcieLinkWidth = lambda h: spec(h).pcie_max_link[1]
    m.nvmlDeviceGetNvLinkState = lambda h, link: m.NVML_FEATURE_ENABLED if nvlink(h, link) else m.NVML_FEATURE_DISABLED
    m.nvmlDeviceGetNvLinkVersion = lambda h, link: nvlink(h, link).nvlink_version
    return m
