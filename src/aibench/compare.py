"""`aibench compare A B [C ...]`: runs (nodes) side by side.

For every case the runs share (same suite, case, target kind and impl) it shows the
headline metric per run, the ratio to the first run oriented so that above 1 is better
whatever the metric, and a verdict from the kept samples: `better` / `worse` when the
95% confidence intervals of the two medians do not overlap, else `same` (within noise).
Per suite, the geometric mean of the ratios. A fleet run document (fleet.py) gives
one column per node. Cases present in only some runs are listed
apart. `--fail-below R` turns it into an acceptance gate: exit 1 when any shared case
falls under ratio R, or any case the baseline passed is failed, skipped or missing in another
run (fail closed).
"""

from __future__ import annotations

import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path

from .errors import UsageError
from .fleet import split_by_node
from .results import PASSED, CaseResult, RunDocument


@dataclass
class Row:
    suite: str
    case_id: str
    target: str
    impl: str
    metric: str
    unit: str
    values: list[float]
    ratios: list[float]  # per run after the first, oriented: > 1 is better
    verdicts: list[str]  # per run after the first: better | worse | same


def load_run(path: str | Path) -> RunDocument:
    try:
        return RunDocument.load(path)
    except FileNotFoundError:
        raise UsageError(f"no such run document: {path}") from None
    except (ValueError, KeyError, json.JSONDecodeError) as e:
        raise UsageError(f"{path} is not a readable aibench run document: {e}") from None


def find_reference(name: str) -> Path:
    """results/reference/<name>.json, else the one <name>*.json, in the current directory
    or aibench's source tree."""
    roots = [Path("results/reference"), Path(__file__).resolve().parents[2] / "results" / "reference"]
    for root in roots:
        if (root / f"{name}.json").is_file():
            return root / f"{name}.json"
        matches = sorted(root.glob(f"{name}*.json")) if root.is_dir() else []
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise UsageError(f"reference {name!r} is ambiguous: {', '.join(m.name for m in matches)}")
    known = sorted({p.stem for r in roots if r.is_dir() for p in r.glob("*.json")})
    raise UsageError(f"no reference result {name!r} (known: {', '.join(known) or 'none'})")


def headline_interval(c: CaseResult, metric: str | None = None) -> tuple[float, float] | None:
    """95% CI of a metric derived from the median time (the headline, a throughput ~
    1/time, or `time_us` ~ time), from the CI of the median time; None for any other
    metric (a latency percentile has no interval here) or without the statistics."""
    s = c.stats.summary if c.stats is not None else None
    lo, hi, med = (s.ci95_low, s.ci95_high, s.median) if s else (None, None, None)
    head = c.headline()
    name = metric or (head[0] if head else None)
    if not (lo and hi and med and head) or name not in (head[0], "time_us") or name not in c.metrics:
        return None
    value = c.metrics[name].value
    return (value * med / hi, value * med / lo) if c.metrics[name].higher_is_better else \
        (value * lo / med, value * hi / med)


def _verdict(base: CaseResult, other: CaseResult, ratio: float) -> str:
    a, b = headline_interval(base), headline_interval(other)
    if a is None or b is None:
        return "same" if abs(ratio - 1) < 0.03 else ("better" if ratio > 1 else "worse")
    if b[0] > a[1]:
        return "better"
    if b[1] < a[0]:
        return "worse"
    return "same"


def compare(runs: list[RunDocument]) -> tuple[list[Row], dict[str, list[float]], list[tuple[str, tuple]]]:
    """(rows of shared cases, geometric mean of ratios per suite per other run,
    [(run machine, case key)] of cases not in every run)."""
    maps = [{c.key(): c for c in r.cases if c.status == PASSED and c.headline()} for r in runs]
    shared = [k for k in maps[0] if all(k in m for m in maps[1:])]
    rows = []
    for k in shared:
        cases = [m[k] for m in maps]
        name, metric = cases[0].headline()
        values = [c.metrics[name].value for c in cases]
        ratios = [v / values[0] if values[0] > 0 else math.nan for v in values[1:]]
        verdicts = [_verdict(cases[0], c, r) for c, r in zip(cases[1:], ratios)]
        rows.append(Row(k[0], k[1], k[2], k[3], name, metric.unit, values, ratios, verdicts))
    geo: dict[str, list[float]] = {}
    for suite in dict.fromkeys(r.suite for r in rows):
        geo[suite] = []
        for i in range(len(runs) - 1):
            logs = [math.log(r.ratios[i]) for r in rows if r.suite == suite and r.ratios[i] > 0]
            geo[suite].append(math.exp(sum(logs) / len(logs)) if logs else math.nan)
    only = [(runs[i].machine, k) for i, m in enumerate(maps) for k in m if k not in shared]
    return rows, geo, only


def names(runs: list[RunDocument]) -> list[str]:
    out = []
    for i, r in enumerate(runs):
        label = r.machine if [x.machine for x in runs].count(r.machine) == 1 else f"{r.machine}#{i + 1}"
        out.append(label)
    return out


def to_markdown(runs, rows, geo, only) -> str:
    labels = names(runs)
    head = ["suite", "case", "target", "impl", "metric", *labels, *[f"{x}/{labels[0]}" for x in labels[1:]]]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r.suite, r.case_id, r.target, r.impl, f"{r.metric} ({r.unit})", *[f"{v:.4g}" for v in r.values],
                 *[f"{x:.3f} {v}" for x, v in zip(r.ratios, r.verdicts)]]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    for suite, g in geo.items():
        lines.append(f"- {suite}: geometric mean ratio " + ", ".join(f"{labels[i + 1]}/{labels[0]} {x:.3f}" for i, x in enumerate(g)))
    if only:
        lines.append(f"- {len(only)} case(s) not in every run: " + "; ".join(f"{m}: {'/'.join(k)}" for m, k in only[:20]))
    return "\n".join(lines)


def print_table(runs, rows, geo, only) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    labels = names(runs)
    table = Table(title="aibench compare (ratio: above 1 is better)")
    for col in ("suite", "case", "target", "impl", "metric", *labels):
        table.add_column(escape(col), justify="right" if col in labels else "left")
    for x in labels[1:]:
        table.add_column(escape(f"{x}/{labels[0]}"), justify="right")
    style = {"better": "green", "worse": "red", "same": "white"}
    for r in rows:
        table.add_row(r.suite, r.case_id, r.target, r.impl, f"{r.metric} ({r.unit})", *[f"{v:.4g}" for v in r.values],
                      *[f"[{style[v]}]{x:.3f} {v}[/]" for x, v in zip(r.ratios, r.verdicts)])
    console = Console()
    if not console.is_terminal:
        console = Console(width=200)
    console.print(table)
    for suite, g in geo.items():
        console.print(f"{suite}: geometric mean " + ", ".join(f"{escape(labels[i + 1])}/{escape(labels[0])} {x:.3f}"
                                                             for i, x in enumerate(g)))
    if only:
        console.print(f"{len(only)} case(s) not in every run (not compared):")
        for m, k in only:
            console.print(f"  {escape(m)}: {escape(' '.join(k))}")


def cmd_compare(args) -> int:
    paths = list(args.runs)
    if args.reference:
        paths.insert(0, str(find_reference(args.reference)))
    # A fleet run document gives one column per node.
    loaded = [(p, node) for p in paths for node in split_by_node(load_run(p))]
    if len(loaded) < 2:
        raise UsageError("compare needs at least two run documents, a fleet run, or --reference NAME and a run")
    runs = [r for _, r in loaded]
    rows, geo, only = compare(runs)
    if args.json:
        print(json.dumps({"runs": [{"path": p, "machine": r.machine} for p, r in loaded],
                          "rows": [r.__dict__ for r in rows], "geomean": geo,
                          "only_in_some": [{"machine": m, "case": list(k)} for m, k in only]}, indent=1))
    elif args.markdown:
        print(to_markdown(runs, rows, geo, only))
    else:
        print_table(runs, rows, geo, only)
    if args.fail_below is not None:
        # Fails closed: a case below the ratio, a ratio that cannot be formed (a baseline of
        # 0), and a baseline case that a candidate did not pass (failed, skipped, missing).
        low = [r for r in rows if any(not x >= args.fail_below for x in r.ratios)]
        lost = not_passed_by_candidates(runs)
        if low:
            print(f"aibench: {len(low)} shared case(s) below {args.fail_below}x of {names(runs)[0]} "
                  "(or with no ratio: a baseline figure of 0)", file=sys.stderr)
        for machine, key, status in lost[:20]:
            print(f"aibench: {machine}: {' '.join(key)} {status} (passed on the baseline)", file=sys.stderr)
        if len(lost) > 20:
            print(f"aibench: ... and {len(lost) - 20} more case(s) of the baseline not passed", file=sys.stderr)
        if not rows and not lost:
            print("aibench: no case of the baseline to compare: nothing passes the gate", file=sys.stderr)
        if low or lost or not rows:
            return 1
    return 0


def not_passed_by_candidates(runs: list[RunDocument]) -> list[tuple[str, tuple, str]]:
    """(candidate machine, case key, failed | skipped | missing) for every case the
    baseline (the first run) passed with a figure and a later run did not."""
    base = [c.key() for c in runs[0].cases if c.status == PASSED and c.headline()]
    out = []
    for run in runs[1:]:
        cases = {c.key(): c for c in run.cases}
        for key in base:
            c = cases.get(key)
            if c is None or c.status != PASSED or c.headline() is None:
                out.append((run.machine, key, "missing" if c is None else c.status if c.status != PASSED else
                            "without a figure"))
    return out


def add_parser(sub) -> None:
    p_cmp = sub.add_parser("compare", help="runs (nodes) side by side, with ratios and noise-aware verdicts")
    p_cmp.add_argument("runs", nargs="*", help="run documents; the first is the baseline")
    p_cmp.add_argument("--reference", metavar="NAME", help="baseline from results/reference/NAME*.json")
    p_cmp.add_argument("--fail-below", type=float, default=None, metavar="RATIO",
                       help="exit 1 when any shared case is below RATIO of the baseline")
    fmt = p_cmp.add_mutually_exclusive_group()
    fmt.add_argument("--markdown", action="store_true")
    fmt.add_argument("--json", action="store_true")
