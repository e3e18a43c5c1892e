"""The host side of the memory suite: NUMA nodes and their CPUs, and the DRAM bound.

The DRAM bound is the DIMM population's own data rate, a path that shares nothing with
the kernels': the sum over populated DIMMs of configured speed (MT/s) x data width
(bits / 8), from the SMBIOS memory-device records (type 17) that `dmidecode -t 17`
prints, or, without dmidecode, the raw records the kernel exposes under
/sys/firmware/dmi/entries/17-*/raw. A channel carries one transfer at a time, so two DIMMs
on one channel are counted twice: the sum is an upper bound of every channel's peak
(channels x MT/s x 8 B), never below it. SMBIOS does not say which NUMA node a DIMM hangs
off: a node gets its share of identical DIMMs, else the whole machine's (dram_bound).
Where neither source gives a populated DIMM with a speed (most VMs, containers without root), there is no independent
bound and the case records why; none is ever estimated.
"""

from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
from dataclasses import dataclass
from pathlib import Path

from ...targets.cpu import read_sysfs

_DMIDECODE_TIMEOUT_S = 10


def parse_cpulist(text: str) -> list[int]:
    """CPUs of a sysfs list ("0-3,8,10-11")."""
    cpus: list[int] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        lo, _, hi = part.partition("-")
        cpus.extend(range(int(lo), int(hi or lo) + 1))
    return cpus


def numa_nodes(root: str = "/") -> dict[int, list[int]]:
    """NUMA node -> the CPUs of it this process may run on (sched_getaffinity), for the
    nodes that have any (memory-only nodes are left out). A machine without the node
    directory is one node of every allowed CPU."""
    allowed = set(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else set(range(os.cpu_count() or 1))
    base = Path(root, "sys/devices/system/node")
    nodes: dict[int, list[int]] = {}
    for d in sorted(base.glob("node[0-9]*"), key=lambda p: int(p.name[4:])):
        text = read_sysfs(d / "cpulist")
        cpus = sorted(allowed & set(parse_cpulist(text))) if text else []
        if cpus:
            nodes[int(d.name[4:])] = cpus
    return nodes or {0: sorted(allowed)}


@dataclass(frozen=True)
class Dimm:
    locator: str
    mts: int  # configured speed, MT/s
    data_bits: int  # data width (without ECC bits)
    size_mb: int = 0

    @property
    def bytes_per_s(self) -> float:
        return self.mts * 1e6 * self.data_bits / 8


def parse_dmidecode(text: str) -> list[Dimm]:
    """The populated DIMMs of `dmidecode -t 17` output that state a configured speed (an
    older dmidecode says "Configured Clock Speed") and a data width."""
    dimms = []
    for block in text.split("\n\n"):
        if "Memory Device" not in block:
            continue
        fields = {}
        for line in block.splitlines():
            key, sep, value = line.strip().partition(":")
            if sep:
                fields[key.strip()] = value.strip()
        size = fields.get("Size", "")
        if not size or size.startswith(("No Module", "Not Installed", "0", "Unknown")):
            continue
        speed = fields.get("Configured Memory Speed") or fields.get("Configured Clock Speed") or ""
        width = fields.get("Data Width", "")
        s, w = re.match(r"(\d+)\s*MT/s", speed), re.match(r"(\d+)\s*bits", width)
        if s and w and int(s.group(1)) > 0 and int(w.group(1)) > 0:
            amount = re.match(r"(\d+)\s*([MGT]B)", size)
            size_mb = int(amount.group(1)) * {"MB": 1, "GB": 1024, "TB": 1 << 20}[amount.group(2)] if amount else 0
            dimms.append(Dimm(fields.get("Locator", "?"), int(s.group(1)), int(w.group(1)), size_mb))
    return dimms


def parse_smbios17(raw: bytes) -> Dimm | None:
    """One raw SMBIOS type 17 record (SMBIOS 3.x layout): None for an empty slot or a
    record without a configured speed (versions before 2.7)."""
    if len(raw) < 0x22 or raw[0] != 17:
        return None
    length = raw[1]
    data_bits, size = struct.unpack_from("<HH", raw, 0x0A)
    if size == 0 or data_bits in (0, 0xFFFF) or length < 0x22:
        return None
    mts = struct.unpack_from("<H", raw, 0x20)[0]
    if mts == 0xFFFF and length >= 0x5C:  # the speed is in the extended field
        mts = struct.unpack_from("<I", raw, 0x58)[0] & 0x7FFFFFFF
    if mts in (0, 0xFFFF):
        return None
    strings = raw[length:].split(b"\0")
    index = raw[0x10]  # device locator: string number, from 1
    locator = strings[index - 1].decode(errors="replace") if 0 < index <= len(strings) else "?"
    if size == 0x7FFF and length >= 0x20:  # the size is in the extended field, in MB
        size = struct.unpack_from("<I", raw, 0x1C)[0] & 0x7FFFFFFF
    elif size & 0x8000:  # in kB
        size = (size & 0x7FFF) // 1024
    return Dimm(locator, mts, data_bits, size)


def dimm_population(root: str = "/") -> tuple[list[Dimm], str]:
    """(populated DIMMs with a speed, where they were read), or ([], why there are none)."""
    tried = []
    dmidecode = shutil.which("dmidecode")
    if dmidecode and root == "/":
        try:
            out = subprocess.run([dmidecode, "-t", "17"], capture_output=True, text=True,
                                 timeout=_DMIDECODE_TIMEOUT_S)
            dimms = parse_dmidecode(out.stdout)
            if dimms:
                return dimms, "dmidecode -t 17"
            tried.append(f"dmidecode -t 17 listed no populated DIMM with a configured speed"
                         f"{': ' + out.stderr.strip().splitlines()[0] if out.stderr.strip() else ''}")
        except (OSError, subprocess.SubprocessError) as e:
            tried.append(f"dmidecode failed: {e}")
    else:
        tried.append("no dmidecode on PATH")
    entries = sorted(Path(root, "sys/firmware/dmi/entries").glob("17-*"))
    dimms = []
    for entry in entries:
        try:
            dimm = parse_smbios17((entry / "raw").read_bytes())
        except OSError:
            continue
        if dimm is not None:
            dimms.append(dimm)
    if dimms:
        return dimms, "SMBIOS type 17 records in /sys/firmware/dmi/entries"
    tried.append("/sys/firmware/dmi/entries has no readable populated type 17 record" if entries
                 else "no SMBIOS type 17 records under /sys/firmware/dmi/entries (a VM or container, or not root)")
    return [], "; ".join(tried)


def node_mem_kb(root: str = "/") -> dict[int, int]:
    """NUMA node -> MemTotal in kB (sysfs nodeN/meminfo), for nodes that have memory."""
    out = {}
    for d in Path(root, "sys/devices/system/node").glob("node[0-9]*"):
        m = re.search(r"MemTotal:\s+(\d+) kB", read_sysfs(d / "meminfo") or "")
        if m and int(m.group(1)) > 0:
            out[int(d.name[4:])] = int(m.group(1))
    return out


def dram_bound(node: int | None = None, root: str = "/") -> tuple[float | None, str]:
    """(bytes per second, source) of the DIMMs serving NUMA `node` (None: the machine), or
    (None, the reason there is no independent bound). A node's DIMMs are the machine's in
    proportion to its memory (MemTotal of the node over all nodes, rounded to whole DIMMs)
    when every DIMM has the same size, speed and width, as a server's population rules
    require for balanced channels; otherwise a node is held to the whole machine's rate
    (loose, never too low)."""
    dimms, where = dimm_population(root)
    if not dimms:
        return None, f"no independent bound: the DIMM population is unknown ({where})"
    share, how = len(dimms), "the machine's DIMMs"
    mem = node_mem_kb(root)
    if node is not None and len(mem) > 1 and node in mem:
        uniform = len({(d.size_mb, d.mts, d.data_bits) for d in dimms}) == 1
        count = round(len(dimms) * mem[node] / sum(mem.values()))
        if uniform and count >= 1:
            share, how = count, (f"node {node}'s {count} of {len(dimms)} identical DIMMs (its share of the memory, "
                                 f"{mem[node]} of {sum(mem.values())} kB)")
        else:
            how = f"the machine's DIMMs for node {node} (DIMMs differ: a node's share is not known): an upper bound"
    per = dimms[0].bytes_per_s if share != len(dimms) else None
    total = share * per if per is not None else sum(d.bytes_per_s for d in dimms)
    kinds = sorted({(d.mts, d.data_bits) for d in dimms})
    each = ", ".join(f"{k[0]} MT/s x {k[1]} bit" for k in kinds)
    return total, (f"DRAM data rate of {how}: {share} x ({each}) = {total / 1e9:.4g} GB/s, from {where}; every DIMM "
                   "counted as its own channel (two per channel: an upper bound)")
