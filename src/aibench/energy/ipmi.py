"""IPMI DCMI: the whole node's power from the BMC (`ipmitool dcmi power reading`, ~1 Hz)."""

from __future__ import annotations

import re
import shutil
import subprocess

from . import SampledPowerMeter

_READING = re.compile(r"Instantaneous power reading:\s*([0-9.]+)\s*Watts", re.I)
_STATE = re.compile(r"Power reading state is:\s*(\w+)", re.I)


def parse_power_reading(text: str) -> float:
    """Watts from `ipmitool dcmi power reading` output; ValueError if it has none."""
    state = _STATE.search(text)
    if state and state.group(1).lower() != "activated":
        raise ValueError(f"DCMI power reading is {state.group(1)}")
    m = _READING.search(text)
    if not m:
        raise ValueError("no 'Instantaneous power reading' in ipmitool output")
    return float(m.group(1))


def read_ipmitool() -> float:
    out = subprocess.run(["ipmitool", "dcmi", "power", "reading"], capture_output=True, text=True, timeout=10)
    if out.returncode != 0:
        raise OSError((out.stderr or out.stdout).strip().splitlines()[-1] if (out.stderr or out.stdout) else
                      f"ipmitool exited {out.returncode}")
    return parse_power_reading(out.stdout)


class IpmiDcmi(SampledPowerMeter):
    source = "ipmi-dcmi"
    scope = "whole node"
    name = "BMC"
    update_period_s = 1.0

    def read_watts(self) -> float:
        return read_ipmitool()


def discover() -> tuple[list, list[str]]:
    if shutil.which("ipmitool") is None:
        return [], ["IPMI: ipmitool is not installed"]
    try:
        read_ipmitool()
    except (OSError, ValueError, subprocess.SubprocessError) as e:
        return [], [f"IPMI: {e}"]
    return [IpmiDcmi()], []
