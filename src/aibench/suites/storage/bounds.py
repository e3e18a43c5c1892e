"""What a storage figure is held to (Suite.check_bound), from paths that share no code with
the figure's:

- the reader's own counts: the window's totals (bytes, reads) must equal the sums of the
  same reads placed per thread and per interval by separate arithmetic (csrc/io/reader.cpp,
  complete()); a read counted outside the timed window (during the ramp, after the end)
  breaks the equality and fails the case (check_counts), and the figure may not exceed
  the rate of the bytes counted per interval (the counted-reads bound);
- page-cache reads (direct=0): a read from the page cache is a copy into the reader's
  buffer, so it cannot outrun the memory copy bandwidth of every allowed CPU over a working
  set of the file's size (measured beside the case: copy_bandwidth);
- a device's own limit where sysfs gives one: an NVMe drive's PCIe link (rate x width x
  line encoding). A virtual disk's link says nothing about its speed: none is taken;
- direct reads (O_DIRECT): the kernel's own count of the sectors read from the block device
  holding the file (/sys/dev/block/MAJ:MIN/stat), taken around every window: every direct
  read reaches the device, so the bytes counted by the reader (or reported by fio) cannot
  exceed what the device delivered. Counted over the window and its ramp and divided by the
  window alone, it is a loose bound that any device, a VM's virtio disk included, gives.
"""

from __future__ import annotations

import functools
import os
import threading
import time
from pathlib import Path

import numpy as np

from ...targets.cpu import physical_cores, read_sysfs
from ..base import CaseFailed

# Working sets above this are DRAM-bound whatever their size: the copy is measured on at
# most this many bytes (the time stays about 0.1 s).
_MAX_COPY_SET = 256 << 20
_COPY_REPEATS = 3


class CountsDisagree(CaseFailed, RuntimeError):
    """The reader's window totals differ from its per-interval counts."""


def check_counts(r: dict) -> None:
    """The window totals of one io_read run (bytes, ios, and per thread) against the sums
    of its per-thread, per-interval counts: CountsDisagree when they differ."""
    threads = zip(r["thread_bytes"], r["thread_ios"], r["thread_interval_bytes"], r["thread_interval_ios"])
    for t, (nbytes, ios, interval_bytes, interval_ios) in enumerate(threads):
        if nbytes != sum(interval_bytes) or ios != sum(interval_ios):
            raise CountsDisagree(
                f"the reader's counts disagree: I/O thread {t} counted {ios} reads ({nbytes} bytes) in the timed "
                f"window but {sum(interval_ios)} ({sum(interval_bytes)} bytes) over the window's intervals: reads "
                "outside the timed window were counted")
    if r["bytes"] != sum(r["thread_bytes"]) or r["ios"] != sum(r["thread_ios"]):
        raise CountsDisagree(f"the reader's counts disagree: {r['ios']} reads ({r['bytes']} bytes) in all, but "
                             f"{sum(r['thread_ios'])} ({sum(r['thread_bytes'])} bytes) over its threads")


def counted_bytes(runs: list[dict]) -> int:
    """Bytes of the reads counted per thread and interval over every window of a case."""
    return sum(sum(sum(per_thread) for per_thread in r["thread_interval_bytes"]) for r in runs)


def copy_bandwidth(working_set: int, fresh: bool = False) -> float:
    """Bytes per second every allowed CPU copies together (numpy copies, one thread per
    core, each over its share of a working set of `working_set` bytes, at most
    _MAX_COPY_SET): the best of a few passes. Measured once per process and size;
    `fresh`: the better of that and a new measurement."""
    size = max(1 << 20, min(int(working_set), _MAX_COPY_SET))
    first = _measured_copy(size)
    return max(first, _measure_copy(size)) if fresh else first


@functools.lru_cache(maxsize=8)
def _measured_copy(size: int) -> float:
    return _measure_copy(size)


def _measure_copy(size: int) -> float:
    threads = max(1, physical_cores())
    share = max(4096, size // threads)
    sources = [np.ones(share, dtype=np.uint8) for _ in range(threads)]
    targets = [np.empty(share, dtype=np.uint8) for _ in range(threads)]
    for s, t in zip(sources, targets):
        np.copyto(t, s)  # touch every page before timing
    best = 0.0
    for _ in range(_COPY_REPEATS):
        barrier = threading.Barrier(threads + 1)

        def copy(i):
            barrier.wait()
            np.copyto(targets[i], sources[i])  # numpy releases the GIL for the copy
            barrier.wait()

        workers = [threading.Thread(target=copy, args=(i,)) for i in range(threads)]
        for w in workers:
            w.start()
        barrier.wait()
        start = time.perf_counter()
        barrier.wait()
        elapsed = time.perf_counter() - start
        for w in workers:
            w.join()
        best = max(best, share * threads / elapsed)
    return best


def _block_dir(path: str, root: str = "/") -> Path | None:
    """/sys/dev/block/MAJ:MIN of the block device holding `path` (a file, or the device
    itself); None where there is none (a network or an overlay filesystem)."""
    import stat as stat_mod

    try:
        st = os.stat(path)
    except OSError:
        return None
    dev = st.st_rdev if stat_mod.S_ISBLK(st.st_mode) else st.st_dev
    block = Path(root, f"sys/dev/block/{os.major(dev)}:{os.minor(dev)}")
    return block if block.is_dir() else None


def device_read_bytes(path: str, root: str = "/") -> tuple[int, str] | None:
    """(bytes, the stat file) the kernel has read from the block device holding `path`:
    "sectors read" (always 512-byte units) of its stat file, the third field (the second in
    the 4-field form old kernels give partitions). None where no block device is found."""
    block = _block_dir(path, root)
    text = read_sysfs(block / "stat") if block is not None else None
    if not text:
        return None
    fields = text.split()
    try:
        sectors = int(fields[1] if len(fields) == 4 else fields[2])
    except (ValueError, IndexError):
        return None
    return sectors * 512, str(block.resolve() / "stat")


def device_limit(path: str, root: str = "/") -> tuple[float, str] | None:
    """(bytes per second, how) of the NVMe drive holding `path` (a file, or the block
    device itself): its PCIe link rate x width x line encoding, from sysfs; None for any
    other device (a virtual disk's link is not its speed) or when sysfs does not say."""
    block = _block_dir(path, root)
    if block is None:
        return None
    real = block.resolve()
    if not real.name.startswith("nvme") and not real.parent.name.startswith("nvme"):
        return None
    for directory in [real, *real.parents]:
        speed = read_sysfs(directory / "current_link_speed")  # "16.0 GT/s PCIe"
        width = read_sysfs(directory / "current_link_width")  # "4"
        if speed is None or width is None:
            continue
        try:
            gts, lanes = float(speed.split()[0]), int(width)
        except (ValueError, IndexError):
            return None
        # 8b/10b line code up to PCIe 2 (5 GT/s), 128b/130b from PCIe 3 (8 GT/s) on.
        encoding = 0.8 if gts <= 5.0 else 128 / 130
        rate = gts * 1e9 * lanes * encoding / 8
        return rate, (f"PCIe link of {real.name}: {speed} x{lanes} ({encoding:.4g} line encoding) = "
                      f"{rate / 1e9:.3g} GB/s, from sysfs {directory}")
    return None
