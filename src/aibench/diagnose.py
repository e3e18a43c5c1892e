"""`aibench diagnose RUN [--baseline FILE | --reference NAME] [--threshold 0.1]`: the
defective-node list of a fleet run (fleet.py).

Each node's headline figure per case is compared with a reference: the fleet of that
case (its median figure, and as its 95% interval the median of the nodes' interval
bounds), or with --baseline/--reference the baseline run's figure and interval for the
same case (the median of its nodes when the baseline is itself a fleet run; the fleet
where the baseline lacks the case). A node is short on a case only when its whole
interval lies below the reference's interval by more than the threshold (the effect);
when its figure is more than the threshold short but the intervals do not show it, the
case is `inconclusive` (too noisy to judge) and the node is not named defective. A node
is also listed where the case failed, where it was skipped while another node or the
baseline passed it, where it lacks a case other nodes or the baseline ran, and when not
one of its cases could be judged. A run of one node needs a baseline. Exit 1 when any
node is listed or any case is inconclusive (fail closed), 0 when every node was judged
healthy.
"""

from __future__ import annotations

import json
import math
import statistics
from dataclasses import asdict, dataclass
from pathlib import Path

from .compare import headline_interval
from .documents import find_reference, load_run
from .errors import UsageError
from .fleet import fleet_rows, node_documents
from .results import PASSED, CaseResult, RunDocument

INCONCLUSIVE = "inconclusive"


@dataclass
class Finding:
    node: str
    suite: str
    case_id: str
    impl: str
    # "below fleet median", "below baseline", "inconclusive", "failed", "skipped", "missing"
    reason: str
    metric: str = ""
    value: float | None = None
    reference: float | None = None
    shortfall: float | None = None  # 1 - value / reference
    detail: str = ""  # the error of a failed case, what an inconclusive case lacked
    interval: list[float] | None = None  # the node's 95% interval of the figure
    reference_interval: list[float] | None = None


@dataclass
class Band:
    """A reference figure of one case: its median over nodes, and its 95% interval."""

    median: float
    low: float
    high: float


def _interval(case: CaseResult, value: float) -> tuple[float, float]:
    """The case's 95% interval of its headline figure; the figure alone without statistics."""
    return headline_interval(case) or (value, value)


def bands(nodes: list[RunDocument], min_nodes: int = 1) -> dict[tuple, Band]:
    """Per case key that at least min_nodes nodes passed with a finite, positive figure:
    the median figure and the medians of the nodes' interval bounds."""
    figures: dict[tuple, list[tuple[float, float, float]]] = {}
    for node in nodes:
        for c in node.cases:
            head = c.headline() if c.status == PASSED else None
            if head and math.isfinite(head[1].value) and head[1].value > 0:
                figures.setdefault(c.key(), []).append((head[1].value, *_interval(c, head[1].value)))
    return {k: Band(statistics.median(v for v, _, _ in f), statistics.median(lo for _, lo, _ in f),
                    statistics.median(hi for _, _, hi in f))
            for k, f in figures.items() if len(f) >= min_nodes}


def _judged_figure(case: CaseResult) -> tuple[float, float, float] | None:
    """(figure, low, high) of the headline (higher is better: CaseResult.headline takes no
    other metric); None without a finite positive figure."""
    head = case.headline()
    if not head or not (math.isfinite(head[1].value) and head[1].value > 0):
        return None
    return (head[1].value, *_interval(case, head[1].value))


def diagnose(doc: RunDocument, baseline: RunDocument | None = None, threshold: float = 0.1) -> list[Finding]:
    nodes = node_documents(doc)
    if len(nodes) < 2 and baseline is None:
        raise UsageError("one node and no baseline: nothing to diagnose against "
                         "(give a fleet run, or --baseline FILE / --reference NAME)")
    base = bands(node_documents(baseline)) if baseline is not None else {}
    fleet = bands(nodes, min_nodes=2)  # a fleet reference needs two nodes that passed the case
    cases = {n.machine: {c.key(): c for c in n.cases} for n in nodes}
    findings: list[Finding] = []
    judged: set[str] = set()  # nodes with at least one case compared with a reference
    ran = {k for n in nodes for k in cases[n.machine]}
    for key in base:
        if key not in ran:
            for node in nodes:
                findings.append(Finding(node=node.machine, suite=key[0], case_id=key[1], impl=key[3],
                                        reason="missing", detail="in the baseline, not in this run"))
    for row in fleet_rows(nodes):
        suite, case_id, _, impl = row.key
        band, reason = base.get(row.key), "below baseline"
        if band is None:
            band, reason = fleet.get(row.key), "below fleet median"
        for node in nodes:
            case: CaseResult | None = cases[node.machine].get(row.key)
            where = dict(node=node.machine, suite=suite, case_id=case_id, impl=impl)
            if case is None:
                findings.append(Finding(**where, reason="missing", detail="the other nodes ran this case"))
                continue
            if case.status != PASSED:
                # A failure always counts; a skip counts when anyone else (a node, the
                # baseline) passed the case: a case skipped everywhere is nobody's fault.
                if row.values or row.key in base or case.status != "skipped":
                    findings.append(Finding(**where, reason=case.status,
                                            detail=case.error or (case.validation.reason if case.validation else "")
                                            or ""))
                continue
            figure = _judged_figure(case)
            if figure is None:  # passed, but no finite positive figure to judge
                if row.values or row.key in base:
                    findings.append(Finding(**where, reason="missing", detail="passed without a finite figure"))
                continue
            if band is None:
                continue
            judged.add(node.machine)
            value, lo, hi = figure
            shortfall = 1 - value / band.median
            short = hi < band.low * (1 - threshold)  # the whole interval below the reference's, by the effect
            if short or shortfall > threshold:
                findings.append(Finding(**where, reason=reason if short else INCONCLUSIVE,
                                        metric=f"{row.metric} ({row.unit})", value=row.values[node.machine],
                                        reference=band.median, shortfall=shortfall,
                                        interval=list(_interval(case, row.values[node.machine])),
                                        reference_interval=[band.low, band.high],
                                        detail="" if short else "its interval reaches within the threshold of "
                                                                "the reference's: too noisy to judge"))
    for node in nodes:  # a node with nothing judged has not been shown healthy
        named = any(f.node == node.machine and f.reason != INCONCLUSIVE for f in findings)
        if not node.cases or (node.machine not in judged and not named):
            findings.append(Finding(node=node.machine, suite="", case_id="", impl="", reason="missing",
                                    detail="no case of this node could be compared with a reference"
                                    if node.cases else "the run has no case for this node"))
    return findings


def defective_nodes(findings: list[Finding]) -> dict[str, list[Finding]]:
    """Findings per node named defective (an inconclusive case names no node), the node
    with the worst shortfall first."""
    per: dict[str, list[Finding]] = {}
    for f in findings:
        if f.reason != INCONCLUSIVE:
            per.setdefault(f.node, []).append(f)

    def worst(items):  # a failed or missing case counts as the worst
        return max(math.inf if f.shortfall is None else f.shortfall for f in items)

    return dict(sorted(per.items(), key=lambda kv: -worst(kv[1])))


def inconclusive_cases(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if f.reason == INCONCLUSIVE]


def _print(doc: RunDocument, findings: list[Finding], threshold: float, against: str) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console()
    if not console.is_terminal:
        console = Console(width=200)
    hosts = {n["node"]: n for n in (doc.fleet or {}).get("nodes", [])}
    nodes = node_documents(doc)
    if not findings:
        console.print(f"no defective node: all {len(nodes)} node(s) within {threshold:.0%} of {against}")
        return
    per_node = defective_nodes(findings)
    if per_node:
        table = Table(title=f"aibench diagnose: figures more than {threshold:.0%} below {against}, and failed cases")
        for col in ("node", "suite", "case", "impl", "reason", "metric", "value", "reference", "shortfall",
                    "detail"):
            table.add_column(col, justify="right" if col in ("value", "reference", "shortfall") else "left")
        for node, items in per_node.items():
            for f in items:
                table.add_row(escape(f.node), f.suite, f.case_id, f.impl, f.reason, f.metric,
                              f"{f.value:.4g}" if f.value is not None else "",
                              f"{f.reference:.4g}" if f.reference is not None else "",
                              f"[red]{f.shortfall:.1%}[/]" if f.shortfall is not None else "", escape(f.detail[:80]))
        console.print(table)
    unsure = inconclusive_cases(findings)
    if unsure:
        console.print(f"[yellow]inconclusive[/] (too noisy to judge, no node named for it): {len(unsure)} figure(s) "
                      f"more than {threshold:.0%} below {against} whose 95% interval reaches within {threshold:.0%} "
                      "of the reference's; rerun with a longer --time-budget or on a quieter fleet:")
        for f in unsure[:20]:
            lo, hi = f.interval or (f.value, f.value)
            rlo, rhi = f.reference_interval or (f.reference, f.reference)
            console.print(f"  {f.suite} {escape(f.case_id)} [{escape(f.impl)}]: {f.value:.4g} ({lo:.4g}-{hi:.4g}) "
                          f"against {f.reference:.4g} ({rlo:.4g}-{rhi:.4g})")
    if not per_node:
        console.print(f"no node named defective, but the verdict is inconclusive ({len(nodes)} node(s))")
        return
    console.print(f"[bold]defective nodes[/] ({len(per_node)} of {len(nodes)}):")
    for node, items in per_node.items():
        info = hosts.get(node)
        where = f" (host {info['host']}, rank {info['rank']})" if info else ""
        worst = max((f for f in items if f.shortfall is not None), key=lambda f: f.shortfall, default=None)
        failed = sum(f.shortfall is None for f in items)
        parts = [f"{len(items) - failed} case(s) short"] + ([f"{failed} failed/skipped/missing"] if failed else [])
        if worst:
            parts.append(f"worst {worst.shortfall:.1%} short on {worst.suite} {worst.case_id} [{worst.impl}]")
        console.print(f"  {escape(node)}{where}: " + ", ".join(parts))


def cmd_diagnose(args) -> int:
    if not 0 < args.threshold < 1:  # a NaN fails this too
        raise UsageError(f"--threshold must be between 0 and 1 (got {args.threshold})")
    doc = load_run(args.run)
    baseline_path = args.baseline or (find_reference(args.reference) if args.reference else None)
    baseline = load_run(baseline_path) if baseline_path else None
    findings = diagnose(doc, baseline, args.threshold)
    against = f"the baseline {Path(baseline_path).name}" if baseline_path else "the fleet"
    if args.json:
        per_node = defective_nodes(findings)
        verdict = "defective" if per_node else INCONCLUSIVE if findings else "healthy"
        print(json.dumps({"run": str(args.run), "baseline": str(baseline_path) if baseline_path else None,
                          "threshold": args.threshold, "verdict": verdict, "defective_nodes": list(per_node),
                          "findings": [asdict(f) for f in findings]}, indent=1))
    else:
        _print(doc, findings, args.threshold, against)
    return 1 if findings else 0


def add_parser(sub) -> None:
    p_diag = sub.add_parser("diagnose", help="the defective-node list of a fleet run")
    p_diag.add_argument("run", help="run document (a fleet run, or one node with --baseline)")
    base = p_diag.add_mutually_exclusive_group()
    base.add_argument("--baseline", metavar="FILE", help="compare every node with this run instead of the fleet median")
    base.add_argument("--reference", metavar="NAME", help="baseline: the shipped reference run NAME (aibench/reference/NAME*.json)")
    p_diag.add_argument("--threshold", type=float, default=0.1, metavar="FRACTION",
                        help="list figures more than this fraction below the reference (default 0.1)")
    p_diag.add_argument("--json", action="store_true")
