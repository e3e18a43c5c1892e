"""What an objectstore figure is held to (Suite.check_bound): the kernel's own count of the
bytes received on the network interfaces of this network namespace.

Every byte an S3 client reads (awscrt, obstore, boto3) arrives through the kernel's network
stack: from a real store on a NIC, from the embedded endpoint (moto, on 127.0.0.1) on `lo`.
The rx byte counters of /proc/net/dev, summed over every interface, `lo` included, count
those bytes (and headers, requests, and anything else this namespace received), so the
bytes a client counts in the figure's window cannot exceed what the kernel counted over
the same time. The count is the kernel's, taken by a sampler that shares no code with the
clients' own byte counts (Record.nbytes), on the clock the Records use (time.perf_counter).

The figure's window (warp's, clients.window) is decided after the run, so the counters are
sampled every SAMPLE_EVERY_S through the measured run (RxSampler), with one sample just
before and one just after it. A client counts each request for the part of its time inside
the window, while its bytes may arrive at any moment of that time: the kernel's count is
taken from the last sample at or before the earliest start of a request the window counts a
part of, to the first sample at or after the latest end of one, and divided by the window's
length alone. That interval holds every byte of every request the figure counts, so the
rate is an upper bound of the figure whatever the timing of the bytes inside a request; it
is loose by the traffic of about one request's time on either side of the window.
"""

from __future__ import annotations

import threading
import time
from bisect import bisect_left, bisect_right
from dataclasses import dataclass, field

PROC_NET_DEV = "/proc/net/dev"
SAMPLE_EVERY_S = 0.02

# (perf_counter before the reading, perf_counter after it, rx bytes by interface)
Sample = tuple[float, float, dict[str, int]]


def read_rx_bytes(path: str = PROC_NET_DEV) -> dict[str, int]:
    """Bytes received so far by each network interface of this network namespace: the
    first field after `name:` of each line of /proc/net/dev. OSError where it cannot be
    read, ValueError where a line is not in that form."""
    with open(path) as f:
        lines = f.read().splitlines()[2:]  # two header lines
    rx: dict[str, int] = {}
    for line in lines:
        name, sep, fields = line.partition(":")
        if not sep or not fields.split():
            raise ValueError(f"{path}: a line not in the form 'interface: counters': {line.strip()!r}")
        rx[name.strip()] = int(fields.split()[0])
    return rx


def rx_between(before: dict[str, int], after: dict[str, int]) -> int:
    """Bytes received between two readings, summed over the interfaces: an interface that
    appeared in between counts from zero; one whose counter went back (reset) or that
    disappeared adds nothing."""
    return sum(max(0, n - before.get(name, 0)) for name, n in after.items())


@dataclass
class RxSampler:
    """The rx counters, read on a background thread every `every_s` from start() to stop(),
    with a reading at each of the two. `unreadable`: why there are no samples."""

    every_s: float = SAMPLE_EVERY_S
    path: str = PROC_NET_DEV
    samples: list[Sample] = field(default_factory=list)
    unreadable: str | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def _read(self) -> None:
        # The clock on both sides of the reading: a sample is "at or before" a moment when
        # it was read entirely before it, "at or after" when it was read entirely after.
        before = time.perf_counter()
        rx = read_rx_bytes(self.path)
        self.samples.append((before, time.perf_counter(), rx))

    def start(self) -> "RxSampler":
        try:
            self._read()
        except (OSError, ValueError) as e:
            self.unreadable = f"{type(e).__name__}: {e}"
            return self
        self._thread = threading.Thread(target=self._loop, name="aibench-rx-sampler", daemon=True)
        self._thread.start()
        return self

    def _loop(self) -> None:
        while not self._stop.wait(self.every_s):
            try:
                self._read()
            except (OSError, ValueError) as e:
                self.unreadable = f"{type(e).__name__}: {e}"
                return

    def stop(self) -> "RxSampler":
        if self._thread is None:
            return self
        self._stop.set()
        self._thread.join()
        self._thread = None
        if self.unreadable is None:
            try:
                self._read()
            except (OSError, ValueError) as e:
                self.unreadable = f"{type(e).__name__}: {e}"
        return self


def rx_over(samples: list[Sample], t_from: float, t_to: float) -> tuple[int, float, float] | None:
    """(bytes, from, to) the kernel received from the last sample at or before `t_from` to
    the first sample at or after `t_to` (samples in time order); None where no sample
    brackets the interval on one side."""
    first = bisect_right([read_end for _, read_end, _ in samples], t_from) - 1
    last = bisect_left([read_start for read_start, _, _ in samples], t_to)
    if first < 0 or last >= len(samples):
        return None
    (_, t0, before), (t1, _, after) = samples[first], samples[last]
    return rx_between(before, after), t0, t1


def counted_span(records, t_a: float, t_b: float) -> tuple[float, float]:
    """From the earliest start to the latest end of the requests the window [t_a, t_b]
    counts a part of (clients.Client.window: each request for its time inside the window)."""
    inside = [r for r in records if min(r.end, t_b) > max(r.start, t_a)]
    if not inside:
        return t_a, t_b
    return min(t_a, min(r.start for r in inside)), max(t_b, max(r.end for r in inside))


def kernel_rx(samples: list[Sample], records, t_a: float, t_b: float, every_s: float) -> dict | None:
    """The kernel's count for the window [t_a, t_b] of these (successful) records: the
    bytes, the interval they were counted over, and their rate per second of window.
    None where the samples do not bracket the requests counted."""
    span = counted_span(records, t_a, t_b)
    got = rx_over(samples, *span)
    if got is None:
        return None
    nbytes, t0, t1 = got
    return {"rx_bytes": nbytes, "counted_s": t1 - t0, "window_s": t_b - t_a,
            "rate_bytes_per_s": nbytes / (t_b - t_a), "sample_every_s": every_s, "samples": len(samples),
            "interfaces": sorted(samples[-1][2]), "source": PROC_NET_DEV}


def bound_source(rx: dict) -> str:
    """The bound's source, for the result and the failure line."""
    return (f"bytes received on every network interface by the kernel's count ({rx['source']} rx_bytes, "
            f"{'+'.join(rx['interfaces'])}) over the {rx['counted_s']:.3g} s holding every request the window "
            f"counts, per second of the {rx['window_s']:.3g} s window: {rx['rate_bytes_per_s'] / 1e9:.4g} GB/s "
            "(every byte a client reads arrives through the kernel's network stack)")
