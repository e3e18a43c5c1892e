"""What an interconnect figure (busbw of an all-reduce, a p2p link's GB/s) is held to
(Suite.check_bound), from paths that share no code with the collective's:

- every byte a rank sends reaches its peer through memory: copied by the sender, the
  receiver or the kernel (shared memory, CMA), or written by a NIC's DMA. So the bytes all
  ranks of a node move per second cannot exceed what their cores copy per second, and one
  rank's busbw is at most the mean of the copy rates of all ranks measured at the same
  time, on buffers of the case's size (cache-hot, as the collective's are);
- across nodes with one rank per node, a rank's busbw is also at most its node's network
  links (the sum of the physical ports' rates in sysfs: fingerprint._nics).

GPU collectives (NCCL, CUDA-aware MPI on GPU buffers) move bytes over the GPUs' links, not
host memory (gpu_bound, from NVML, which shares no code with NCCL or the MPI library):

- every element of a rank's buffer enters the sum on every other rank, and every element
  of its result holds the others' inputs, so whatever the algorithm each GPU sends and
  receives at least `size` bytes per all-reduce: algbw <= what the GPU's links move one
  way, busbw <= that x 2(n-1)/n. Not busbw <= the links' rate: with a reduction in the
  switch (NVLink SHARP, NCCL's NVLS, the default on 8 x H100/H200 HGX) a GPU sends each
  byte once, and nccl-tests reports busbw ~480 GB/s there, over the 450 GB/s of its
  18 NVLink 4 links (github.com/NVIDIA/nccl-tests/issues/272, NVIDIA/nccl-tests#212);
- a GPU's links: its active NVLinks (NVML link state and version, x the datasheet rate of
  a link) plus its PCIe host link (memory.cuda.pcie_limit), the way out to host memory
  and the NICs. Unknown (an NVLink version missing from the table, a host link that is
  not PCIe, no NVML): no bound, the impl's detail says why;
- ranks that share a GPU exchange bytes inside it: those GPUs bound nothing; the bound is
  the slowest GPU of the others;
- across nodes, GPUs without any NVLink reach other nodes only through their node's
  network ports: algbw <= the slowest node's ports too (_network_bound; any number of
  ranks per node, as the node's partial sum must leave it). GPUs with NVLink may reach
  other nodes over it (multi-node NVLink: GH200 NVL32, GB200 NVL72): no network bound.
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


def _network_bound(session, any_ranks_per_node: bool = False) -> tuple[float, str] | None:
    """(GB/s, source) of the slowest node's network ports, summed, when the ranks span
    nodes with one rank per node (or any number, `any_ranks_per_node`); None otherwise or
    when a node's ports are unknown. Collective."""
    nodes = session.node_ranks()
    if len(nodes) < 2 or (not any_ranks_per_node and any(len(ranks) != 1 for ranks in nodes.values())):
        return None
    from ...fingerprint import _nics

    speeds = [n.get("speed_gbps") for n in _nics()]
    mine = sum(s for s in speeds if s) / 8 if speeds and all(speeds) else None
    every = session.comm.allgather(mine)
    if any(v is None for v in every):
        return None
    slowest = min(range(len(every)), key=lambda r: every[r])
    per_node = "" if any_ranks_per_node else " (one rank per node)"
    return every[slowest], (f"the network ports of {session.hosts[slowest]} in sysfs: {every[slowest]:.4g} GB/s "
                            f"in all{per_node}")


# Per-link, per-direction GB/s of NVLink, by the integer nvmlDeviceGetNvLinkVersion
# returns. That integer is NVML's nvmlNvlinkVersion_t (nvml.h; NVIDIA's cuda-python maps it
# so): 1 = 1.0, 2 = 2.0, 3 = 2.2, 4 = 3.0, 5 = 3.1, 6 = 4.0, 7 = 5.0. Older tools (hwloc)
# read it as the plain generation (4 for H100): the values kept here mean the same rate
# either way (4: NVLink 3.0 or 4, both 25 GB/s), and 2.2 and 3.1, whose products' datasheets
# are not checked here, are left out (no bound rather than a wrong one). Rates are the
# datasheets' bidirectional totals / links / 2: P100 (NVLink 1) 160 GB/s over 4 links;
# V100 SXM2 (NVLink 2) 300 GB/s over 6; A100 SXM (NVLink 3) 600 GB/s over 12; H100/H200
# SXM (NVLink 4) 900 GB/s over 18; B200 (NVLink 5) 1.8 TB/s over 18.
NVLINK_GBPS = {1: 20.0, 2: 25.0, 4: 25.0, 6: 25.0, 7: 50.0}
NVLINK_NAMES = {1: "1.0", 2: "2.0", 3: "2.2", 4: "3.0", 5: "3.1", 6: "4.0", 7: "5.0", 8: "6.0"}
# nvml.h's return codes of a link the board does not have.
_NVML_ERROR_INVALID_ARGUMENT, _NVML_ERROR_NOT_SUPPORTED = 2, 3


def nvlink_rate(index: int) -> tuple[float | None, str]:
    """(bytes per second, source) that GPU `index`'s active NVLinks move one way: the sum
    over links whose NVML state is enabled of their version's rate (NVLINK_GBPS); 0.0 with
    no active link (a PCIe card: NVML answers NOT_SUPPORTED); (None, why) when NVML does not
    answer or a link's version has no known rate."""
    from ...targets import cuda as cu

    nvml, handle = cu._nvml_handle(index)
    if handle is None:
        return None, "NVML does not answer (no NVLink state)"
    enabled = getattr(nvml, "NVML_FEATURE_ENABLED", 1)
    versions: dict[int, int] = {}  # version -> active links
    for link in range(getattr(nvml, "NVML_NVLINK_MAX_LINKS", 18)):
        try:
            if nvml.nvmlDeviceGetNvLinkState(handle, link) != enabled:
                continue
            version = int(nvml.nvmlDeviceGetNvLinkVersion(handle, link))
        except Exception as e:  # noqa: BLE001 - NVML's errors are its module's classes
            if getattr(e, "value", None) in (_NVML_ERROR_INVALID_ARGUMENT, _NVML_ERROR_NOT_SUPPORTED):
                continue  # no such link on this board
            return None, f"NVML gives no NVLink {link} state or version ({type(e).__name__}: {e})"
        versions[version] = versions.get(version, 0) + 1
    if not versions:
        return 0.0, "no active NVLink (NVML)"
    unknown = sorted(v for v in versions if v not in NVLINK_GBPS)
    if unknown:
        return None, (f"no rate known for NVLink version {', '.join(NVLINK_NAMES.get(v, str(v)) for v in unknown)} "
                      f"(NVML nvmlNvlinkVersion_t {', '.join(map(str, unknown))})")
    gbps = sum(NVLINK_GBPS[v] * n for v, n in versions.items())
    parts = " + ".join(f"{n} active NVLink {NVLINK_NAMES[v]} link(s) x {NVLINK_GBPS[v]:g} GB/s"
                       for v, n in sorted(versions.items()))
    return gbps * 1e9, f"{parts} = {gbps:.4g} GB/s (NVML link state and version; datasheet rate per link and direction)"


def gpu_link_rate(index: int) -> dict:
    """What GPU `index` moves one way over all its links at once: {rate (bytes per second,
    or None), source (how, or why not), nvlink (whether it has an active NVLink; None:
    unknown)}. Its active NVLinks plus its PCIe host link (memory.cuda.pcie_limit)."""
    from ..memory.cuda import pcie_limit

    nvlink, nvlink_source = nvlink_rate(index)
    pcie, pcie_source = pcie_limit(index)
    has_nvlink = None if nvlink is None else nvlink > 0
    if nvlink is None:
        return {"rate": None, "source": f"no independent bound: {nvlink_source}", "nvlink": None}
    if pcie is None:
        return {"rate": None, "source": pcie_source + (f" (and {nvlink_source})" if has_nvlink else ""),
                "nvlink": has_nvlink}
    rate = nvlink + pcie
    source = (f"{nvlink_source} + {pcie_source}: {rate / 1e9:.4g} GB/s" if has_nvlink else
              f"{pcie_source} ({nvlink_source})")
    return {"rate": rate, "source": source, "nvlink": has_nvlink}


def gpu_bound(session, device_index: int, shares_gpu: bool) -> dict | None:
    """The bound of busbw of an all-reduce on GPU buffers: {value (GB/s), unit, source},
    or None when no GPU's links are known. `device_index`: this rank's GPU; `shares_gpu`:
    another rank of this node uses it too. Collective: every rank calls it; all get the
    same answer. See the module's docstring for why algbw <= the slowest GPU's links."""
    mine = None if shares_gpu else gpu_link_rate(device_index)
    every = session.comm.allgather(mine)
    n = session.size
    factor = 2 * (n - 1) / n
    bounds = []  # (GB/s of busbw, source)
    known = [r for r in range(n) if every[r] is not None and every[r]["rate"] is not None]
    if known:
        slowest = min(known, key=lambda r: every[r]["rate"])
        gbps = every[slowest]["rate"] / 1e9
        bounds.append((gbps * factor, f"the links of rank {slowest}'s GPU on {session.hosts[slowest]}: "
                                      f"{every[slowest]['source']}; every GPU sends and receives each byte of the "
                                      f"buffer at least once (algbw <= {gbps:.4g} GB/s, in-switch reductions "
                                      f"included), busbw <= that x 2(n-1)/n = {gbps * factor:.4g} GB/s"))
    if all(e is not None and e["nvlink"] is False for e in every):  # no way out of a node but its network
        links = _network_bound(session, any_ranks_per_node=True)
        if links is not None:
            bounds.append((links[0] * factor, f"{links[1]}: every node sends and receives its partial sum at least "
                                              f"once (algbw <= {links[0]:.4g} GB/s), busbw <= that x 2(n-1)/n = "
                                              f"{links[0] * factor:.4g} GB/s"))
    if not bounds:
        return None
    value, source = min(bounds)
    return {"value": value, "unit": "GB/s", "source": source}
