"""STREAM on the cpu target: aibench's own C++ kernels and numpy, one NUMA node per case.

Both impls run on the case's node alone: their threads are pinned to the node's CPUs
(sched_setaffinity, no libnuma) and write the arrays first (first touch), so the pages
land on that node. The arrays hold small integers (patterns of the element index), so
every kernel's result is exact in fp64 and the check recomputes every element.
"""

from __future__ import annotations

import os
import time
from threading import Barrier, Thread
from typing import Any

import numpy as np

from ... import _core
from ...faults import inject
from ...results import FAILED, PASSED, Validation
from ...targets.cpu import cache_sizes, case_threads, last_level_cache_bytes
from ..base import RunContext
from ..kernel import KernelRunner
from .dram import dram_bound, numa_nodes

SCALAR = 3.0
# kernel -> (output, inputs): STREAM's c = a, b = s c, c = a + b, a = b + s c
KERNELS = {"copy": ("c", ("a",)), "scale": ("b", ("c",)), "add": ("c", ("a", "b")), "triad": ("a", ("b", "c"))}
# Bytes STREAM counts per element: 8 B for each array read or written.
BYTES_PER_ELEMENT = {k: 8 * (1 + len(inputs)) for k, (_, inputs) in KERNELS.items()}
_CHECK_CHUNK = 1 << 22  # elements recomputed at a time (32 MiB of float64)


def pattern(which: str, start: int, stop: int) -> np.ndarray:
    """Elements start:stop of array `which` as init writes them (csrc/memory/stream.cpp):
    a[j] = j % 1021 + 1, b[j] = j % 509 + 2, c[j] = j % 257."""
    j = np.arange(start, stop, dtype=np.int64)
    if which == "a":
        return (j % 1021 + 1).astype(np.float64)
    if which == "b":
        return (j % 509 + 2).astype(np.float64)
    return (j % 257).astype(np.float64)


def expected(kernel: str, which: str, start: int, stop: int) -> np.ndarray:
    """What array `which` holds after any number of passes of `kernel`: its pattern, or
    for the output the kernel of the inputs' patterns (each kernel reads only arrays it
    does not write, so every pass writes the same values)."""
    out, _ = KERNELS[kernel]
    if which != out:
        return pattern(which, start, stop)
    if kernel == "copy":
        return pattern("a", start, stop)
    if kernel == "scale":
        return SCALAR * pattern("c", start, stop)
    if kernel == "add":
        return pattern("a", start, stop) + pattern("b", start, stop)
    return pattern("b", start, stop) + SCALAR * pattern("c", start, stop)


def streaming_stores(array_bytes: int) -> bool:
    """Non-temporal stores when an array is larger than the last-level cache: its lines
    would not be read again before they are evicted."""
    return array_bytes > last_level_cache_bytes()


def default_size() -> int:
    """Bytes per array: four times the L3 (STREAM's rule: each array at least 4x the
    sum of the caches), at least 64 MiB, in whole MiB."""
    l3 = cache_sizes().get("L3") or last_level_cache_bytes()
    return max(64 << 20, -(-4 * l3 // (1 << 20)) << 20)


class StreamRunner(KernelRunner):
    """The three fp64 arrays of one STREAM case on one NUMA node, and their check. A
    subclass allocates them (first touch from its own threads) and gives run and time."""

    def __init__(self, params: dict[str, Any], ctx: RunContext):
        self.params, self.kernel = params, params["kernel"]
        self.n = params["size"] // 8
        nodes = numa_nodes()
        self.node = params["node"]
        self.cpus = nodes[self.node]
        self.threads, self.threads_rule = case_threads(self.cpus)
        self.arrays = {name: np.empty(self.n) for name in "abc"}  # untouched: first touch is the impl's
        self.dram = self.memory_bound()  # (bytes/s or None, its source or why there is none)

    def memory_bound(self) -> tuple[float | None, str]:
        """The DRAM bound of the node (dram.py) when the arrays the kernel touches are past
        twice the last-level cache (each pass then evicts what the next one reads; nearer
        the cache's size a replacement policy may keep part of it); else none, and why."""
        touched = BYTES_PER_ELEMENT[self.kernel] * self.n
        llc = last_level_cache_bytes()
        if touched < 2 * llc:
            return None, (f"no independent bound: the {touched >> 20} MiB the kernel touches are not past twice the "
                          f"last-level cache ({llc >> 20} MiB): the cache can serve them, and the DRAM rate does not "
                          "bound the cache")
        return dram_bound(self.node)

    def poison_output(self) -> None:
        self.arrays[KERNELS[self.kernel][0]].fill(np.nan)

    def output(self):
        return self.arrays[KERNELS[self.kernel][0]], "fp64"

    def check(self) -> Validation:
        """STREAM's check, exact: one timed pass into a poisoned output, then (tests only)
        the injected fault, then every element of the three arrays against what the
        kernel must leave there (`expected`)."""
        self.poison_output()
        self.time(1)
        out, fmt = self.output()
        inject(self.name, out, fmt, self.seed)
        for which, arr in self.arrays.items():
            for start in range(0, self.n, _CHECK_CHUNK):
                stop = min(self.n, start + _CHECK_CHUNK)
                wrong = np.flatnonzero(arr[start:stop] != expected(self.kernel, which, start, stop))
                if wrong.size:
                    j = start + int(wrong[0])
                    role = "output" if which == KERNELS[self.kernel][0] else "input"
                    return Validation(status=FAILED, max_rel_error=float("inf"), tolerance=0.0,
                                      reason=f"wrong result: {self.kernel} {role} array {which}[{j}] = {arr[j]!r}, "
                                             f"expected {expected(self.kernel, which, j, j + 1)[0]!r} "
                                             f"({wrong.size} wrong in elements {start}..{stop - 1})")
        return Validation(status=PASSED, max_rel_error=0.0, tolerance=0.0,
                          reason="every element of a, b and c equals STREAM's expected value (exact integers)")

    def work(self) -> None:
        return None  # no FLOPs: no energy per FLOP

    def bytes_per_call(self) -> int:
        return BYTES_PER_ELEMENT[self.kernel] * self.n

    def peak(self) -> dict | None:
        """The DIMM population's data rate (dram.py) where it is known."""
        rate, source = self.dram
        return None if rate is None else {"value": rate / 1e9, "unit": "GB/s", "source": source, "kind": "dram"}

    def base_detail(self) -> dict:
        return {"dram_bound": self.dram[1], "node": self.node, "cpus": self.cpus, "threads": self.threads, "threads_rule": self.threads_rule,
                "elements": self.n, "bytes_per_element": BYTES_PER_ELEMENT[self.kernel]}

    def close(self) -> None:
        self.arrays = {}


class OwnStream(StreamRunner):
    name = "aibench"
    target_kinds = ("cpu",)
    description = ("aibench's C++ STREAM kernels (csrc/memory/stream.cpp): OpenMP threads pinned to the NUMA node, "
                   "first touch in the timed loop's layout, non-temporal stores past the cache (x86)")

    def __init__(self, params, ctx):
        super().__init__(params, ctx)
        a = self.arrays
        self.op = _core.Stream(a["a"], a["b"], a["c"], self.kernel, self.threads, self.cpus,
                               streaming_stores(params["size"]), SCALAR)
        self.op.init()

    def run(self) -> None:
        self.op.run()

    def time(self, number: int) -> float:
        return self.op.time(number)

    def detail(self) -> dict:
        d = self.op.describe
        return {**self.base_detail(), "stores": d["stores"], "schedule": d["schedule"],
                "loop": "C++ loop, steady clock, a barrier after each pass"}

    def close(self) -> None:
        self.op = None
        super().close()


class NumpyStream(StreamRunner):
    name = "numpy"
    target_kinds = ("cpu",)
    description = ("numpy ufuncs with out= (np.copyto, np.multiply, np.add) on the case's threads, each pinned to "
                   "the NUMA node and streaming its own slice; triad is two ufunc passes (a = s c, a += b)")

    def __init__(self, params, ctx):
        super().__init__(params, ctx)
        bounds = [self.n * t // self.threads for t in range(self.threads + 1)]
        self.slices = [slice(lo, hi) for lo, hi in zip(bounds, bounds[1:])]
        self._on_threads(self._first_touch, 1)

    def _on_threads(self, work, number: int) -> float:
        """work(slice) `number` times on each of the case's threads (one per slice, pinned
        to the node), a barrier after each pass; seconds from the first pass's start to the
        last one's end (threads are started and pinned before the clock starts)."""
        barrier = Barrier(len(self.slices) + 1)

        def thread(part: slice) -> None:
            try:
                os.sched_setaffinity(0, self.cpus)  # this thread only
                barrier.wait()
                for _ in range(number):
                    work(part)
                    barrier.wait()  # as STREAM's parallel for: every pass ends before the next
            except BaseException:
                barrier.abort()  # the others (and the caller) stop waiting: BrokenBarrierError
                raise

        workers = [Thread(target=thread, args=(part,), daemon=True) for part in self.slices]
        for w in workers:
            w.start()
        barrier.wait()
        start = time.perf_counter()
        for _ in range(number):
            barrier.wait()
        elapsed = time.perf_counter() - start
        for w in workers:
            w.join()
        return elapsed

    def _first_touch(self, part: slice) -> None:
        for start in range(part.start, part.stop, _CHECK_CHUNK):
            stop = min(part.stop, start + _CHECK_CHUNK)
            for which, arr in self.arrays.items():
                arr[start:stop] = pattern(which, start, stop)

    def _pass(self, part: slice) -> None:
        a, b, c = (self.arrays[x][part] for x in "abc")
        if self.kernel == "copy":
            np.copyto(c, a)
        elif self.kernel == "scale":
            np.multiply(c, SCALAR, out=b)
        elif self.kernel == "add":
            np.add(a, b, out=c)
        else:
            np.multiply(c, SCALAR, out=a)
            np.add(a, b, out=a)

    def run(self) -> None:
        self.time(1)

    def time(self, number: int) -> float:
        return self._on_threads(self._pass, number)

    def detail(self) -> dict:
        return {**self.base_detail(), "numpy": np.__version__,
                "loop": "Python threads (numpy releases the GIL), a barrier after each pass, perf_counter"}



IMPLS = (OwnStream, NumpyStream)
