"""What an interconnect figure (busbw of an all-reduce, a p2p link's GB/s) is held to
(Suite.check_bound), from paths that share no code with the collective's:

- every byte a rank sends reaches its peer through memory: copied by the sender, the
  receiver or the kernel (shared memory, CMA), or written by a NIC's DMA. So the bytes all
  ranks of a node move per second cannot exceed what their cores copy per second, and one
  rank's busbw is at most the mean of the copy rates of all ranks measured at the same
  time, on buffers of the case's size (cache-hot, as the collective's are);
- across nodes with one rank per node, a rank's busbw is also at most its node's network
  links (the sum of the physical ports' rates in sysfs: fingerprint._nics).

GPU collectives (NCCL, CUDA-aware MPI) move bytes over NVLink/PCIe, not host memory: no
bound is measured for them yet (None: recorded as no bound).
"""

from __future__ import annotations

import functools
import time

import numpy as np

# The copy is timed over at least this long, best of _REPEATS passes.
_MIN_TIMED_S = 2e-3
_REPEATS = 5
# Buffers above this are DRAM-bound whatever their size.
_MAX_SET = 256 << 20


@functools.lru_cache(maxsize=64)
def _copy_rate_cached(nbytes: int) -> float:
    return copy_rate(nbytes)


def copy_rate(nbytes: int) -> float:
    """Bytes per second this process copies between two buffers of `nbytes` (at most
    _MAX_SET), kept hot as the collective's buffers are: the best of a few passes, each of
    enough copies to take _MIN_TIMED_S."""
    size = max(64, min(int(nbytes), _MAX_SET))
    src, dst = np.ones(size, dtype=np.uint8), np.empty(size, dtype=np.uint8)
    np.copyto(dst, src)
    start = time.perf_counter()
    np.copyto(dst, src)
    one = max(time.perf_counter() - start, 1e-7)
    number = max(1, int(_MIN_TIMED_S / one))
    best = 0.0
    for _ in range(_REPEATS):
        start = time.perf_counter()
        for _ in range(number):
            np.copyto(dst, src)
        best = max(best, size * number / (time.perf_counter() - start))
    return best


def host_bound(session, nbytes: int, fresh: bool = False) -> dict:
    """The bound of one rank's busbw (or a p2p link's rate) on host memory: {value (GB/s),
    unit, source}. Collective: every rank calls it; all get the same answer."""
    session.comm.Barrier()  # every rank copies at the same time, as during the collective
    rate = copy_rate(nbytes) if fresh else _copy_rate_cached(nbytes)
    rates = session.comm.allgather(rate)
    value = float(np.mean(rates)) / 1e9
    source = (f"the mean memory copy rate of the {len(rates)} rank(s), measured together on "
              f"{min(nbytes, _MAX_SET)}-byte buffers: {value:.4g} GB/s (every byte sent is copied through memory)")
    links = _network_bound(session)
    if links is not None and links[0] < value:
        return {"value": links[0], "unit": "GB/s", "source": links[1]}
    return {"value": value, "unit": "GB/s", "source": source}


def _network_bound(session) -> tuple[float, str] | None:
    """(GB/s, source) of the slowest node's network ports, summed, when the ranks span
    nodes with one rank per node; None otherwise or when a node's ports are unknown."""
    nodes = session.node_ranks()
    if len(nodes) < 2 or any(len(ranks) != 1 for ranks in nodes.values()):
        return None
    from ...fingerprint import _nics

    speeds = [n.get("speed_gbps") for n in _nics()]
    mine = sum(s for s in speeds if s) / 8 if speeds and all(speeds) else None
    every = session.comm.allgather(mine)
    if any(v is None for v in every):
        return None
    slowest = min(range(len(every)), key=lambda r: every[r])
    return every[slowest], (f"the network ports of {session.hosts[slowest]} in sysfs: {every[slowest]:.4g} GB/s "
                            "in all (one rank per node)")
