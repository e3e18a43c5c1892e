"""Linux powercap RAPL: package and DRAM energy counters (Intel, and AMD's package zone).

Counters are /sys/class/powercap/intel-rapl:N[/intel-rapl:N:M]/energy_uj, wrapping at
max_energy_range_uj; root-only since Linux 5.10. AIBENCH_POWERCAP_ROOT points the reader
at another directory laid out the same way (tests, containers with a bind mount).
"""

from __future__ import annotations

import os
from pathlib import Path

from . import CounterMeter

DEFAULT_ROOT = "/sys/class/powercap"


def powercap_root() -> Path:
    return Path(os.environ.get("AIBENCH_POWERCAP_ROOT", DEFAULT_ROOT))


class RaplZone(CounterMeter):
    source = "rapl"
    update_period_s = 0.001  # the counter updates about every millisecond
    poll_s = 0.25  # far below the wrap time even at kilowatts

    def __init__(self, path: Path, name: str):
        self.path = path
        self.name = name
        self.scope = "dram" if name.startswith("dram") else "cpu package"
        self.wrap_joules = int((path / "max_energy_range_uj").read_text()) / 1e6 + 1e-6

    def read_joules(self) -> float:
        return int((self.path / "energy_uj").read_text()) / 1e6


def discover() -> tuple[list[RaplZone], list[str]]:
    """Readable package and DRAM zones, and the reasons for what could not be read."""
    root = powercap_root()
    zones, reasons = [], []
    if not root.is_dir():
        return [], [f"RAPL: no powercap directory {root}"]
    for zone in sorted(root.glob("intel-rapl:*")):
        try:
            name = (zone / "name").read_text().strip()
        except OSError as e:
            reasons.append(f"RAPL: {zone.name}: cannot read its name ({e.strerror})")
            continue
        if not (name.startswith("package") or name == "dram"):
            continue  # core/uncore/psys are parts of or beside the package; not summed
        if name == "dram":
            name = f"dram-{zone.name.split(':')[1]}"
        try:
            meter = RaplZone(zone, name)
            meter.read_joules()
            zones.append(meter)
        except PermissionError:
            reasons.append(f"RAPL: {zone}/energy_uj is not readable (root-only since Linux 5.10; "
                           "run as root or grant read access)")
        except (OSError, ValueError) as e:
            reasons.append(f"RAPL: {zone}: {e}")
    if not zones and not reasons:
        reasons.append(f"RAPL: no package zones under {root}")
    return zones, reasons
