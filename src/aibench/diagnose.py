"""`aibench diagnose RUN [--baseline FILE | --reference NAME] [--threshold 0.1]`: the
defective-node list of a fleet run (fleet.py).

Each node's headline figure per case is compared with a reference: the fleet median of
that case, or with --baseline/--reference the baseline run's figure for the same case (the
median of its nodes when the baseline is itself a fleet run; the fleet median where the
baseline lacks the case). A node is listed for every case where it falls short of the
reference by more than the threshold (shortfall = 1 - value / reference, on the metric
oriented so that higher is better), where the case failed or was skipped on it while
passing elsewhere, and where it lacks a case other nodes ran. A run of one node needs a
baseline. Exit 1 when any node is listed (an acceptance gate), 0 when none is.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

from .documents import find_reference, load_run
from .errors import UsageError
from .fleet import fleet_rows, node_documents
from .results import PASSED, CaseResult, RunDocument


@dataclass
class Finding:
    node: str
    suite: str
    case_id: str
    impl: str
    reason: str  # "below fleet median", "below baseline", "failed", "skipped", "missing"
    metric: str = ""
    value: float | None = None
    reference: float | None = None
    shortfall: float | None = None  # 1 - value / reference
    detail: str = ""  # the error of a failed case


def baseline_figures(doc: RunDocument) -> dict[tuple, float]:
    """Headline figure per case key: the run's own, or its nodes' median for a fleet."""
    return {row.key: row.median for row in fleet_rows(node_documents(doc)) if row.values}


def diagnose(doc: RunDocument, baseline: RunDocument | None = None, threshold: float = 0.1) -> list[Finding]:
    nodes = node_documents(doc)
    if len(nodes) < 2 and baseline is None:
        raise UsageError("one node and no baseline: nothing to diagnose against "
                         "(give a fleet run, or --baseline FILE / --reference NAME)")
    base = baseline_figures(baseline) if baseline is not None else {}
    cases = {n.machine: {c.key(): c for c in n.cases} for n in nodes}
    findings: list[Finding] = []
    # Fail closed: a node that measured nothing, and baseline cases the run lacks.
    for node in nodes:
        if not node.cases:
            findings.append(Finding(node=node.machine, suite="", case_id="", impl="", reason="missing",
                                    detail="the run has no case for this node"))
    ran = {k for n in nodes for k in cases[n.machine]}
    for key in base:
        if key not in ran:
            for node in nodes:
                findings.append(Finding(node=node.machine, suite=key[0], case_id=key[1], impl=key[3],
                                        reason="missing", detail="in the baseline, not in this run"))
    for row in fleet_rows(nodes):
        suite, case_id, _, impl = row.key
        reference, reason = base.get(row.key), "below baseline"
        if reference is None:
            reference, reason = (row.median if len(row.values) >= 2 else None), "below fleet median"
        for node in nodes:
            case: CaseResult | None = cases[node.machine].get(row.key)
            where = dict(node=node.machine, suite=suite, case_id=case_id, impl=impl)
            if case is None:
                findings.append(Finding(**where, reason="missing", detail="the other nodes ran this case"))
            elif case.status != PASSED:
                if row.values or case.status != "skipped":  # a case skipped everywhere is nobody's fault
                    findings.append(Finding(**where, reason=case.status,
                                            detail=case.error or (case.validation.reason if case.validation else "")
                                            or ""))
            elif reference and node.machine in row.values:
                value = row.values[node.machine]
                shortfall = 1 - value / reference
                if shortfall > threshold:
                    findings.append(Finding(**where, reason=reason, metric=f"{row.metric} ({row.unit})", value=value,
                                            reference=reference, shortfall=shortfall))
    return findings


def defective_nodes(findings: list[Finding]) -> dict[str, list[Finding]]:
    """Findings per node, the node with the worst shortfall first."""
    per: dict[str, list[Finding]] = {}
    for f in findings:
        per.setdefault(f.node, []).append(f)

    def worst(items):  # a failed or missing case counts as the worst
        return max(math.inf if f.shortfall is None else f.shortfall for f in items)

    return dict(sorted(per.items(), key=lambda kv: -worst(kv[1])))


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
    table = Table(title=f"aibench diagnose: figures more than {threshold:.0%} below {against}, and failed cases")
    for col in ("node", "suite", "case", "impl", "reason", "metric", "value", "reference", "shortfall", "detail"):
        table.add_column(col, justify="right" if col in ("value", "reference", "shortfall") else "left")
    per_node = defective_nodes(findings)
    for node, items in per_node.items():
        for f in items:
            table.add_row(escape(f.node), f.suite, f.case_id, f.impl, f.reason, f.metric,
                          f"{f.value:.4g}" if f.value is not None else "",
                          f"{f.reference:.4g}" if f.reference is not None else "",
                          f"[red]{f.shortfall:.1%}[/]" if f.shortfall is not None else "", escape(f.detail[:80]))
    console.print(table)
    console.print(f"[bold]defective nodes[/] ({len(per_node)} of {len(nodes)}):")
    for node, items in per_node.items():
        info = hosts.get(node)
        where = f" (host {info['host']}, rank {info['rank']})" if info else ""
        worst = max((f for f in items if f.shortfall is not None), key=lambda f: f.shortfall, default=None)
        failed = sum(f.shortfall is None for f in items)
        parts = [f"{len(items) - failed} case(s) short"] + ([f"{failed} failed/missing"] if failed else [])
        if worst:
            parts.append(f"worst {worst.shortfall:.1%} short on {worst.suite} {worst.case_id} [{worst.impl}]")
        console.print(f"  {escape(node)}{where}: " + ", ".join(parts))


def cmd_diagnose(args) -> int:
    if not 0 < args.threshold < 1:
        raise UsageError(f"--threshold must be between 0 and 1 (got {args.threshold})")
    doc = load_run(args.run)
    baseline_path = args.baseline or (find_reference(args.reference) if args.reference else None)
    baseline = load_run(baseline_path) if baseline_path else None
    findings = diagnose(doc, baseline, args.threshold)
    against = f"the baseline {Path(baseline_path).name}" if baseline_path else "the fleet median"
    if args.json:
        print(json.dumps({"run": str(args.run), "baseline": str(baseline_path) if baseline_path else None,
                          "threshold": args.threshold, "defective_nodes": list(defective_nodes(findings)),
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
