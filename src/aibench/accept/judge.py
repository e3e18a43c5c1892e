"""Judging run documents against a spec: one Verdict per (node, check).

Fails closed: a check is `pass` only when a matching case passed its validation, ran
unthrottled, has the metric, and the whole 95% confidence interval of the figure clears
the threshold. Otherwise it is `fail` (below the threshold, a failed or skipped case, a
throttled case, hardware that is not the spec's), `inconclusive` (the threshold lies
inside the confidence interval) or `missing` (no case or no metric to judge).
"""

from __future__ import annotations

import math
import re
import statistics
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from ..compare import headline_interval
from ..documents import find_reference, load_run
from ..fleet import node_documents
from ..health import window_problems
from ..results import FAILED, PASSED, CaseResult, RunDocument
from .spec import Check, Spec
from .spread import judge_spread

PASS, FAIL, INCONCLUSIVE, MISSING = "pass", "fail", "inconclusive", "missing"


@dataclass
class Verdict:
    check: str
    spec: str
    suite: str
    metric: str
    verdict: str  # pass | fail | inconclusive | missing
    reason: str
    threshold: str  # as the spec states it
    source: str
    value: float | None = None
    unit: str | None = None
    limit: float | None = None  # the threshold in the metric's unit (or fraction of peak)
    interval: list[float] | None = None  # 95% CI of the value
    margin: float | None = None  # value / limit - 1, oriented (> 0: better than needed)
    case: str | None = None  # the case (and impl) judged
    cases: int = 0  # how many cases the check matched

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class NodeJudgement:
    node: str
    machine: str
    hardware_problems: list[str]
    verdicts: list[Verdict] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        # No verdict is no evidence: a node with no check judged is not passed.
        return not self.hardware_problems and bool(self.verdicts) and all(v.verdict == PASS for v in self.verdicts)


def hardware_problems(spec: Spec, systems: list[dict[str, Any]], cases: list[CaseResult]) -> list[str]:
    """Why this node is not the hardware the spec is for (empty: it is). `systems`: the
    fingerprints of every run document of the node (a GPU run, an MPI run across nodes
    and a storage run can be judged together): the GPUs of the one that has the most,
    the widest MPI job, the most NICs any records."""
    problems: list[str] = []
    gpus = max(([d.get("name", "") for d in ((s.get("gpus") or {}).get("devices") or [])] for s in systems),
               key=len, default=[])
    if not gpus:  # a JAX target names its devices in the cases
        gpus = sorted({str(c.impl_detail.get("device_kind")) for c in cases if c.impl_detail.get("device_kind")})
    cpu = systems[0].get("cpu") or {}
    mpi_nodes = max(((s.get("mpi") or {}).get("nodes") or 0 for s in systems), default=0)
    recorded = [s["nics"] for s in systems if s.get("nics") is not None]
    nics = max(recorded, key=len) if recorded else None
    for spec_name, hw in spec.hardware:
        where = f"{spec_name}: "
        if "gpu_name" in hw:
            pattern = re.compile(hw["gpu_name"], re.IGNORECASE)
            wrong = [g for g in gpus if not pattern.search(g)]
            if not gpus:
                problems.append(where + f"no GPU in the run (the spec is for GPUs matching {hw['gpu_name']!r})")
            elif wrong:
                problems.append(where + f"GPU {', '.join(sorted(set(wrong)))} is not {hw['gpu_name']!r}")
        if "min_gpus" in hw and len(gpus) < hw["min_gpus"]:
            problems.append(where + f"{len(gpus)} GPU(s), the spec needs {hw['min_gpus']}")
        for key, have in (("cpu_model", cpu.get("model", "")), ("cpu_arch", cpu.get("arch", ""))):
            if key in hw and not re.search(hw[key], str(have), re.IGNORECASE):
                problems.append(where + f"{key.replace('_', ' ')} {have!r} is not {hw[key]!r}")
        if "min_nodes" in hw:
            nodes = mpi_nodes or max((len((c.impl_detail.get("topology") or {}).get("hosts") or [])
                                      for c in cases), default=1)
            if nodes < hw["min_nodes"]:
                problems.append(where + f"the run spans {nodes} node(s), the spec needs {hw['min_nodes']}")
        if "min_nics" in hw or "nic_min_gbps" in hw:
            if nics is None:
                problems.append(where + "the run document does not record the node's NICs (made by an older aibench)")
            else:
                fast = [n for n in nics if (n.get("speed_gbps") or 0) >= hw.get("nic_min_gbps", 0)]
                if len(fast) < hw.get("min_nics", 1):
                    problems.append(where + f"{len(fast)} NIC(s) at {hw.get('nic_min_gbps', 0):g} Gbit/s or more, "
                                    f"the spec needs {hw.get('min_nics', 1)}")
    return problems


def _oriented(case: CaseResult, metric: str) -> float:
    m = case.metrics[metric]
    return m.value if m.higher_is_better else -m.value


def _reference_doc(name: str, cache: dict[str, RunDocument]) -> RunDocument:
    if name not in cache:
        path = Path(name) if Path(name).is_file() else find_reference(name)
        cache[name] = load_run(path)
    return cache[name]


def judge_check(check: Check, cases: list[CaseResult], fleet_median: dict[tuple, float] | None,
                references: dict[str, RunDocument]) -> Verdict:
    v = Verdict(check=check.id, spec=check.spec, suite=check.suite, metric=check.metric, verdict=MISSING,
                reason="", threshold=check.describe_threshold(), source=check.source)
    matched = [c for c in cases if check.matches(c)]
    v.cases = len(matched)
    if not matched:
        v.reason = "no case in the run matches this check"
        return v
    failed = [c for c in matched if c.status == FAILED]
    if failed:
        c = failed[0]
        v.verdict, v.case = FAIL, f"{c.case_id} [{c.impl}]"
        v.reason = f"{len(failed)} matching case(s) failed: {c.error or (c.validation and c.validation.reason) or ''}"
        return v
    passed = [c for c in matched if c.status == PASSED]
    skipped = [c for c in matched if c.status != PASSED]
    if not passed or (check.select == "each" and skipped):
        c = skipped[0]
        v.verdict, v.case = FAIL, f"{c.case_id} [{c.impl}]"
        v.reason = f"skipped: {(c.validation and c.validation.reason) or c.error or 'no reason recorded'}"
        return v
    with_metric = [c for c in passed if check.metric in c.metrics]
    if not with_metric:
        v.reason = f"no matching case has the metric {check.metric!r} (it has: " \
                   f"{', '.join(sorted({m for c in passed for m in c.metrics})) or 'none'})"
        return v
    if check.select == "each" and len(with_metric) < len(passed):
        c = next(c for c in passed if check.metric not in c.metrics)
        v.case = f"{c.case_id} [{c.impl}]"
        v.reason = f"a matching case has no metric {check.metric!r} (select = \"each\" judges every one)"
        return v
    throttled = [c for c in with_metric if (c.telemetry or {}).get("throttled")]
    if throttled:
        c = throttled[0]
        v.verdict, v.case = FAIL, f"{c.case_id} [{c.impl}]"
        v.reason = "ran throttled (a thermal or hardware clock slowdown during the case)"
        return v
    if check.health:  # never passes on a figure of an unhealthy window, nor on one of unknown health
        judged = [(c, *window_problems(c.health, check.health)) for c in with_metric]
        bad = next(((c, why) for c, why, _ in judged if why), None)
        unknown = next(((c, why) for c, _, why in judged if why), None)
        if bad or unknown:
            c, why = bad or unknown
            v.verdict, v.case = FAIL if bad else MISSING, f"{c.case_id} [{c.impl}]"
            v.reason = ("unhealthy window: " if bad else "health required, not known: ") + "; ".join(why)
            return v
    candidates = sorted(with_metric, key=lambda c: _oriented(c, check.metric), reverse=True)
    judged = [_judge_value(check, c, fleet_median, references) for c in candidates]
    # No margin: a zero lower-is-better figure (better than any limit), or nothing judged.
    margin = lambda j: j.margin if j.margin is not None else math.inf  # noqa: E731
    if check.select == "best":
        order = [PASS, INCONCLUSIVE, FAIL, MISSING]
        chosen = min(judged, key=lambda j: (order.index(j.verdict), -margin(j)))
    else:
        order = [MISSING, FAIL, INCONCLUSIVE, PASS]  # each: the worst one speaks for the check
        chosen = min(judged, key=lambda j: (order.index(j.verdict), margin(j)))
    chosen.cases = len(matched)
    return chosen


def _judge_value(check: Check, case: CaseResult, fleet_median: dict[tuple, float] | None,
                 references: dict[str, RunDocument]) -> Verdict:
    metric = case.metrics[check.metric]
    v = Verdict(check=check.id, spec=check.spec, suite=check.suite, metric=check.metric, verdict=MISSING,
                reason="", threshold=check.describe_threshold(), source=check.source, value=metric.value,
                unit=metric.unit, case=f"{case.case_id} [{case.impl}]")
    higher = metric.higher_is_better
    if not math.isfinite(metric.value) or metric.value < 0:
        v.verdict, v.reason = FAIL, f"the figure {metric.value!r} is not a finite, non-negative number"
        return v
    interval = headline_interval(case, check.metric)
    kind = check.threshold_kind
    if kind in ("min", "max"):
        if metric.unit != check.unit:
            v.verdict, v.reason = FAIL, f"unit mismatch: the run has {metric.unit}, the spec says {check.unit}"
            return v
        limit, higher = getattr(check, kind), kind == "min"
    elif kind == "fraction_of_peak":
        if case.percent_of_peak is None:
            v.reason = "no known peak for this case, so no fraction of peak"
            return v
        if not (math.isfinite(case.percent_of_peak) and metric.value > 0):
            v.verdict, v.reason = FAIL, f"percent of peak {case.percent_of_peak!r} of a figure {metric.value:g}"
            return v
        scale = case.percent_of_peak / 100 / metric.value
        v.value, v.unit = case.percent_of_peak / 100, "fraction of peak"
        interval = (interval[0] * scale, interval[1] * scale) if interval else None
        limit, higher = check.fraction_of_peak, True
    elif kind == "ratio_to_reference":
        ref = _reference_doc(check.reference, references)
        base = next((c for c in ref.cases if c.key() == case.key() and c.status == PASSED
                     and check.metric in c.metrics), None)
        if base is None:
            v.reason = f"the reference {check.reference} has no passed figure for {case.case_id} [{case.impl}]"
            return v
        ref_value = base.metrics[check.metric].value
        if not (math.isfinite(ref_value) and ref_value > 0):
            v.reason = f"the reference {check.reference}'s figure {ref_value!r} is no figure to scale"
            return v
        limit = ref_value * check.ratio_to_reference if higher else ref_value / check.ratio_to_reference
    else:
        median = (fleet_median or {}).get((case.key(), check.metric))
        if median is None:
            v.reason = "no fleet median: not a fleet run, or no other node has this case"
            return v
        limit = median * check.ratio_to_fleet_median if higher else median / check.ratio_to_fleet_median
    v.limit = limit
    v.interval = list(interval) if interval else None
    v.margin = (v.value / limit - 1) if higher else (limit / v.value - 1 if v.value else None)
    lo, hi = interval if interval else (v.value, v.value)
    good_all, bad_all = (lo >= limit, hi < limit) if higher else (hi <= limit, lo > limit)
    if good_all:
        v.verdict, v.reason = PASS, ""
    elif bad_all:
        v.verdict = FAIL
        v.reason = f"{v.value:.4g} is {'below' if higher else 'above'} {limit:.4g}"
    else:
        v.verdict = INCONCLUSIVE
        v.reason = f"the threshold {limit:.4g} lies inside the 95% interval [{lo:.4g}, {hi:.4g}]"
    return v


def _fleet_medians(nodes: list[RunDocument]) -> dict[str, dict[tuple, float]]:
    """Per node: the median over the OTHER nodes of every (case key, metric) that another
    node passed (a node is not judged against a median its own figure pulls toward it;
    a node alone has none)."""
    values: dict[tuple, dict[str, float]] = {}  # (case key, metric) -> {node: figure}
    for n in nodes:
        for c in n.cases:
            if c.status == PASSED:
                for name, m in c.metrics.items():
                    if math.isfinite(m.value) and m.value > 0:  # no median from figures that are none
                        values.setdefault((c.key(), name), {})[n.machine] = m.value
    return {n.machine: {k: statistics.median(others) for k, v in values.items()
                        if (others := [x for node, x in v.items() if node != n.machine])}
            for n in nodes}


def reference_paths(spec: Spec) -> dict[str, Path]:
    """The run document behind each `reference` the checks name."""
    out = {}
    for c in spec.checks:
        if c.reference and c.reference not in out:
            out[c.reference] = Path(c.reference) if Path(c.reference).is_file() else find_reference(c.reference)
    return out


def judge_runs(spec: Spec, docs: list[RunDocument], references: dict[str, RunDocument] | None = None
               ) -> list[NodeJudgement]:
    """Every node of every run document against every check. Cases of later documents
    replace the same case of earlier ones (a rerun with more samples). `references`:
    the reference runs by the name the checks give (loaded on demand otherwise)."""
    by_node: dict[str, tuple[list[RunDocument], dict[tuple, CaseResult]]] = {}
    for doc in docs:
        for node in node_documents(doc):
            entry = by_node.setdefault(node.machine, ([], {}))
            entry[0].append(node)
            for c in node.cases:
                entry[1][c.key()] = c
    nodes = [replace(node_docs[0], cases=list(cases.values())) for node_docs, cases in by_node.values()]
    medians = _fleet_medians(nodes)
    references = dict(references or {})
    out = []
    for node, (node_docs, _) in zip(nodes, by_node.values()):
        problems = hardware_problems(spec, [d.system for d in node_docs], node.cases)
        j = NodeJudgement(node=node.machine, machine=node.machine, hardware_problems=problems)
        for check in spec.checks:
            v = judge_check(check, node.cases, medians[node.machine], references)
            if problems and v.verdict == PASS:
                v.verdict, v.reason = FAIL, "hardware does not match the spec: " + "; ".join(problems)
            j.verdicts.append(v)
        out.append(j)
    hosts = {n["node"]: n.get("host") or n["node"] for d in docs for n in (d.fleet or {}).get("nodes", [])}
    for check in (c for c in spec.checks if c.spread):
        spread = judge_spread(check, nodes, hosts)
        for j in (j for j in out if j.node in spread):
            verdict, reason, short = spread[j.node]
            j.verdicts.append(Verdict(
                check=f"{check.id}:spread", spec=check.spec, suite=check.suite, metric=check.metric, verdict=verdict,
                reason=reason, threshold=f"each device within {check.spread['max']:.0%} of the node's best",
                source=check.source, value=short, unit="shortfall" if short is not None else None))
    return out
