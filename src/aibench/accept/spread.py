"""Spread within a node (issue #30 item 3; docs/accept.md, "Spread within a node").

One bad GPU, riser or NVLink shows as one device of a node falling short of its siblings
on the same case. A check with `spread = { max = 0.05 }` holds every device of a node to
the node's best device on each case the check matches: a device's shortfall is
1 - figure / best figure (for a lower-is-better metric, 1 - best / figure), and the node
fails when a device is short by more than `max`, naming the device and its shortfall.
Against the best rather than the median: it works for two devices (the two NUMA nodes of a
two-socket node), and a device cannot be healthier than the best of its kind.

The devices of a node are
- the GPUs of one host in a `--fleet --per-gpu` run (each GPU is a fleet node `host:gpuN`;
  the host is the fleet entry's `host`), as many as the host's fingerprint lists;
- the NUMA nodes of a CPU node: cases that differ only in their `node` parameter (the memory
  suite's NUMA node), as many as the fingerprint's `memory.numa_nodes` (every node sysfs
  lists: one the run could not measure, CPU-less or outside its cpuset, is missing).
Figures are compared with their 95% intervals: fail only when even the interval's most
favourable reading is short by more than `max`, pass when even the least favourable is
within it, inconclusive otherwise. A device with no figure, or fewer devices than the node
has, is `missing`: the node is not accepted on devices it did not measure.
"""

from __future__ import annotations

import math
from typing import Any

from ..compare import headline_interval
from ..results import PASSED, CaseResult, RunDocument
from .spec import Check

NUMA_PARAM = "node"  # the memory suite's NUMA node (None on the cuda target)
_ORDER = ("missing", "fail", "inconclusive", "pass")  # the worst speaks for the node


def _numa_node(case: CaseResult) -> Any:
    return case.params.get(NUMA_PARAM)


def _rate(case: CaseResult, metric: str) -> tuple[float, float, float]:
    """(figure, interval low, interval high) oriented so that higher is better."""
    m = case.metrics[metric]
    if not 0 < m.value < math.inf:  # no figure to compare: judged as such by _judge_slot
        return math.nan, math.nan, math.nan
    lo, hi = headline_interval(case, metric) or (m.value, m.value)
    if m.higher_is_better:
        return m.value, lo, hi
    return 1 / m.value, 1 / hi, 1 / lo


def _judge_slot(what: str, figures: dict[str, CaseResult], metric: str, limit: float) -> tuple[str, str, float]:
    """(verdict, reason, worst shortfall) of one case across the devices that have it."""
    rates = {d: _rate(c, metric) for d, c in figures.items()}
    if any(not (r[1] > 0) for r in rates.values()):
        bad = next(d for d, r in rates.items() if not r[1] > 0)
        return "fail", f"{what}: {bad} has no positive figure", 1.0
    best = max(rates, key=lambda d: rates[d][0])
    b, b_lo, b_hi = rates[best]
    worst = ("pass", "", 0.0)
    for device, (r, lo, hi) in rates.items():
        if device == best:
            continue
        short, most, least = 1 - r / b, 1 - lo / b_hi, 1 - hi / b_lo
        verdict = "fail" if least > limit else "pass" if most <= limit else "inconclusive"
        unit = figures[device].metrics[metric].unit
        reason = (f"{what}: {device} is {short:.1%} short of {best} ({figures[device].metrics[metric].value:.4g} vs "
                  f"{figures[best].metrics[metric].value:.4g} {unit}; 95% interval of the shortfall "
                  f"[{max(least, 0):.1%}, {most:.1%}]), spread max {limit:.0%}")
        if (_ORDER.index(verdict), -short) < (_ORDER.index(worst[0]), -worst[2]):
            worst = (verdict, reason, short)
    if worst[0] == "pass":
        return "pass", f"{what}: {len(rates)} devices within {worst[2]:.1%} of {best} (spread max {limit:.0%})", worst[2]
    return worst


def _slots(devices: dict[str, list[CaseResult]], check: Check, key) -> tuple[dict[Any, dict[str, CaseResult]], list[str]]:
    """Per case (by `key`), each device's passed case with the metric; and which device
    lacks a case another device has."""
    slots: dict[Any, dict[str, CaseResult]] = {}
    for device, cases in devices.items():
        for c in cases:
            if check.matches(c) and c.status == PASSED and check.metric in c.metrics:
                slots.setdefault(key(c), {})[device] = c
    lacking = []
    for k, figures in slots.items():
        for device in devices:
            if device not in figures:
                lacking.append(f"{device} has no figure for {k[1]} [{k[3]}]")
    return slots, lacking


def _judge_devices(devices: dict[str, list[CaseResult]], expected: int, noun: str, check: Check, key
                   ) -> tuple[str, str, float | None]:
    limit = check.spread["max"]
    slots, lacking = _slots(devices, check, key)
    if len(devices) < expected:
        return "missing", f"figures from {len(devices)} of the node's {expected} {noun}s", None
    if lacking:
        return "missing", "; ".join(sorted(set(lacking))), None
    if not slots:
        return "missing", "no device has a passed figure for this check", None
    judged = [_judge_slot(f"{k[1]} [{k[3]}]", figures, check.metric, limit) for k, figures in slots.items()]
    return min(judged, key=lambda j: (_ORDER.index(j[0]), -j[2]))


def _gpu_count(doc: RunDocument) -> int:
    return len(((doc.system or {}).get("gpus") or {}).get("devices") or [])


def _numa_count(doc: RunDocument) -> int:
    return int(((doc.system or {}).get("memory") or {}).get("numa_nodes") or 1)


def whole_job(suite: str) -> bool:
    """Whether the suite's figures are of every rank together (interconnect): no device's own."""
    from ..errors import UsageError
    from ..suites import get_suite

    try:
        return get_suite(suite).uses_mpi
    except UsageError:  # a suite not installed here: its cases say nothing either way
        return False


def judge_spread(check: Check, nodes: list[RunDocument], hosts: dict[str, str]
                 ) -> dict[str, tuple[str, str, float | None]]:
    """node -> (verdict, reason, worst shortfall) of the check's spread, for the nodes where
    it applies. `nodes`: every judged node with its cases; `hosts`: each node's host
    (per-GPU fleet nodes share one). It does not apply to a node of one device, to a figure
    of the whole MPI job, nor to a CPU figure of the whole node (no per-NUMA cases)."""
    if whole_job(check.suite):
        return {}
    by_host: dict[str, list[RunDocument]] = {}
    for n in nodes:
        by_host.setdefault(hosts.get(n.machine, n.machine), []).append(n)
    out = {}
    for host, group in by_host.items():
        if len(group) > 1:  # a --per-gpu fleet: each fleet node is one GPU of the host
            result = _judge_devices({n.machine: n.cases for n in group}, max(_gpu_count(n) for n in group), "GPU",
                                    check, key=CaseResult.key)
        else:
            node = group[0]
            numa = [c for c in node.cases if check.matches(c) and _numa_node(c) is not None]
            gpus = _gpu_count(node)
            if numa:
                devices: dict[str, list[CaseResult]] = {}
                for c in numa:
                    devices.setdefault(f"NUMA node {_numa_node(c)}", []).append(c)
                if len(devices) == 1 and _numa_count(node) <= 1:
                    continue  # one NUMA node: nothing to spread

                def key(c: CaseResult) -> tuple:  # the case without its NUMA node
                    params = ",".join(f"{k}={v}" for k, v in sorted(c.params.items()) if k != NUMA_PARAM)
                    return (c.suite, params, c.target.split(":")[0], c.impl)

                result = _judge_devices(devices, _numa_count(node), "NUMA node", check, key)
            elif check.target == "cuda" and gpus > 1:
                result = ("missing", f"one figure for the node's {gpus} GPUs: the spread needs one per GPU "
                                     "(aibench run --fleet --per-gpu)", None)
            else:
                continue
        for n in group:
            out[n.machine] = result
    return out
