"""A directory laid out like /sys/class/powercap whose RAPL counters advance at known
wattages (and wrap at max_energy_range_uj), for testing aibench's RAPL reader.

    python tests/fake_rapl.py DIR WATTS [DRAM_WATTS]   # runs until killed
    AIBENCH_POWERCAP_ROOT=DIR aibench run --suite power --quick
"""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path


class FakeRapl:
    def __init__(self, root: Path, package_watts: float, dram_watts: float | None = None,
                 max_range_uj: int = 262_143_328_850, tick_s: float = 0.005):
        self.root, self.tick_s = Path(root), tick_s
        self.zones = {"intel-rapl:0": ("package-0", package_watts)}
        if dram_watts is not None:
            self.zones["intel-rapl:0/intel-rapl:0:0"] = ("dram", dram_watts)
        self.max_range_uj = max_range_uj
        for rel, (name, _) in self.zones.items():
            d = self.root / rel
            d.mkdir(parents=True, exist_ok=True)
            (d / "name").write_text(name + "\n")
            (d / "max_energy_range_uj").write_text(f"{max_range_uj}\n")
        # The kernel exposes sub-zones both nested and as top-level links.
        if dram_watts is not None and not (self.root / "intel-rapl:0:0").exists():
            os.symlink(self.root / "intel-rapl:0/intel-rapl:0:0", self.root / "intel-rapl:0:0")
        self._start = time.perf_counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._write()

    def _write(self) -> None:
        elapsed = time.perf_counter() - self._start
        for rel, (_, watts) in self.zones.items():
            value = int(watts * elapsed * 1e6) % (self.max_range_uj + 1)
            path = self.root / rel / "energy_uj"
            tmp = path.with_suffix(".tmp")
            tmp.write_text(f"{value}\n")
            os.replace(tmp, path)  # readers never see half a number

    def _run(self) -> None:
        while not self._stop.wait(self.tick_s):
            self._write()

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


if __name__ == "__main__":
    dram = float(sys.argv[3]) if len(sys.argv) > 3 else None
    with FakeRapl(Path(sys.argv[1]), float(sys.argv[2]), dram):
        while True:
            time.sleep(3600)
