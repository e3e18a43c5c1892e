"""`aibench compare A B [C ...]`: runs (nodes) side by side.

For every case the runs share (same suite, case, target kind and impl) it shows the
headline metric per run, the ratio to the first run oriented so that above 1 is better
whatever the metric, and a verdict: `better` / `worse` only when the 95% confidence
intervals of the two medians do not overlap AND the ratio is beyond the effect threshold,
max(--min-effect (10%, asv's default factor 1.1), 3 x the case's run-to-run CV); else
`same`. The run-to-run CV is measured over the baseline and its `--rerun` documents
(repeated runs of the baseline's machine); without reruns, from how much each of the two
runs' figure moved between its own windows (stats.window_spread).
Per suite, the geometric mean of the ratios. A fleet run document (fleet.py) gives
one column per node. Cases present in only some runs are listed apart.

`--fail-below R` turns it into an acceptance gate on the ratio's interval (from the two
intervals): exit 1 when a shared case's interval is wholly under R, `inconclusive` (no
failure) when it straddles R; and fail closed: exit 1 when a ratio cannot be formed (a
figure that is not a finite positive number on either side), when a case the baseline
passed is failed, skipped or missing in another run, and when a run passed a case the
baseline has no passed figure for (nothing to gate it against).
"""

from __future__ import annotations

import json
import math
import sys
from dataclasses import dataclass

from .documents import find_reference, load_run
from .errors import UsageError
from .fleet import split_by_node
from .results import PASSED, CaseResult, RunDocument
from .stats import (DEFAULT_MIN_EFFECT, NOISE_K, effect_threshold, gate, ratio_interval, run_to_run_cv, verdict,
                    window_spread)


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
    ratio_intervals: list[tuple[float, float]]  # per run after the first (the ratio alone without statistics)
    verdicts: list[str]  # per run after the first: better | worse | same
    run_to_run_cv: float | None  # over the baseline and its reruns, else from the runs' windows; None: neither
    effect_threshold: float  # the relative difference a verdict needs
    noise_from: str | None = None  # "reruns" | "windows" | None: where run_to_run_cv came from


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


def judge(base: CaseResult, other: CaseResult, threshold: float) -> tuple[float, tuple[float, float], str]:
    """(ratio of other's headline to base's, its interval, verdict) of two results of one
    case. Without the statistics of both, the interval is the ratio alone (the effect
    threshold decides). A figure on either side that is not a finite positive number (0,
    negative, NaN, inf) gives a NaN ratio, verdict `same`: no ratio, which the gate fails."""
    name = base.headline()[0]
    a, b = base.metrics[name].value, other.metrics[name].value
    if not (0 < a < math.inf and 0 < b < math.inf):
        return math.nan, (math.nan, math.nan), "same"
    ratio = b / a
    base_ci, other_ci = headline_interval(base), headline_interval(other)
    interval = ratio_interval(base_ci, other_ci) if base_ci and other_ci else (ratio, ratio)
    return ratio, interval, verdict(ratio, interval, threshold)


def rerun_cvs(runs: list[RunDocument], reruns: list[RunDocument]) -> dict[tuple, float]:
    """Each case's run-to-run CV: the spread of its headline figure over the baseline
    (runs[0]) and its reruns; cases that fewer than two of them passed have none."""
    if not reruns:
        return {}
    figures: dict[tuple, list[float]] = {}
    for run in (runs[0], *reruns):
        for c in run.cases:
            if c.status == PASSED and c.headline():
                figures.setdefault(c.key(), []).append(c.headline()[1].value)
    cvs = {k: run_to_run_cv(v) for k, v in figures.items()}
    return {k: cv for k, cv in cvs.items() if cv is not None}


def case_window_spread(c: CaseResult) -> float | None:
    """stats.window_spread of a case's kept samples, by the window its samples were taken in."""
    if c.stats is None or not c.stats.samples_s:
        return None
    window = (c.stats.extra.get("interleave") or {}).get("window_samples", 1)
    return window_spread(c.stats.samples_s, window if isinstance(window, int) and window > 0 else 1)


def windows_cv(cases: list[CaseResult]) -> float | None:
    """The run-to-run CV of one case as the runs themselves show it: the root mean square
    of each run's window spread (None when any run has too few windows to show it)."""
    spreads = [case_window_spread(c) for c in cases]
    if any(x is None for x in spreads):
        return None
    return math.sqrt(sum(x * x for x in spreads) / len(spreads))


def compare(runs: list[RunDocument], min_effect: float = DEFAULT_MIN_EFFECT, reruns: list[RunDocument] = ()
            ) -> tuple[list[Row], dict[str, list[float]], list[tuple[str, tuple]]]:
    """(rows of shared cases, geometric mean of ratios per suite per other run,
    [(run machine, case key)] of cases not in every run). `reruns`: more runs of the
    baseline's machine, for each case's run-to-run CV."""
    maps = [{c.key(): c for c in r.cases if c.status == PASSED and c.headline()} for r in runs]
    shared = [k for k in maps[0] if all(k in m for m in maps[1:])]
    cvs = rerun_cvs(runs, list(reruns))
    rows = []
    for k in shared:
        cases = [m[k] for m in maps]
        name, metric = cases[0].headline()
        cv, source = (cvs[k], "reruns") if k in cvs else (windows_cv(cases), "windows")
        threshold = effect_threshold(min_effect, cv)
        judged = [judge(cases[0], c, threshold) for c in cases[1:]]
        rows.append(Row(k[0], k[1], k[2], k[3], name, metric.unit, [c.metrics[name].value for c in cases],
                        [j[0] for j in judged], [j[1] for j in judged], [j[2] for j in judged], cv,
                        threshold, source if cv is not None else None))
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


def rule_note(rows: list[Row], min_effect: float, reruns: int) -> str:
    """What a verdict needed, and where the run-to-run noise came from."""
    from_reruns = sum(r.noise_from == "reruns" for r in rows)
    from_windows = sum(r.noise_from == "windows" for r in rows)
    noise = (f"run-to-run CV from the baseline and {reruns} rerun(s) for {from_reruns} of {len(rows)} case(s)"
             if reruns else "no --rerun of the baseline")
    noise += (f"; from the runs' own windows for {from_windows} case(s)" if from_windows else "")
    if not from_reruns and not from_windows:
        noise += ": run-to-run noise not measured, the minimum effect stands"
    return (f"better/worse: 95% intervals apart and a difference over max({min_effect:.1%}, "
            f"{NOISE_K:g} x run-to-run CV); {noise}")


def _ratio_cell(ratio: float, interval: tuple[float, float], verdict_: str) -> str:
    return f"{ratio:.3f} ({interval[0]:.3f}-{interval[1]:.3f}) {verdict_}"


def to_markdown(runs, rows, geo, only, note: str) -> str:
    labels = names(runs)
    head = ["suite", "case", "target", "impl", "metric", *labels, *[f"{x}/{labels[0]}" for x in labels[1:]]]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r.suite, r.case_id, r.target, r.impl, f"{r.metric} ({r.unit})", *[f"{v:.4g}" for v in r.values],
                 *[_ratio_cell(*j) for j in zip(r.ratios, r.ratio_intervals, r.verdicts)]]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    for suite, g in geo.items():
        lines.append(f"- {suite}: geometric mean ratio " + ", ".join(f"{labels[i + 1]}/{labels[0]} {x:.3f}" for i, x in enumerate(g)))
    lines.append(f"- {note}")
    if only:
        lines.append(f"- {len(only)} case(s) not in every run: " + "; ".join(f"{m}: {'/'.join(k)}" for m, k in only[:20]))
    return "\n".join(lines)


# A ratio's colour follows its verdict: green only for a real `better`, red only for a real
# `worse` (the run summary's own/peer ratios too).
VERDICT_STYLE = {"better": "green", "worse": "red", "same": "default"}


def print_table(runs, rows, geo, only, note: str) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    labels = names(runs)
    table = Table(title="aibench compare (ratio (its interval) verdict: above 1 is better)")
    for col in ("suite", "case", "target", "impl", "metric", *labels):
        table.add_column(escape(col), justify="right" if col in labels else "left")
    for x in labels[1:]:
        table.add_column(escape(f"{x}/{labels[0]}"), justify="right")
    for r in rows:
        table.add_row(r.suite, r.case_id, r.target, r.impl, f"{r.metric} ({r.unit})", *[f"{v:.4g}" for v in r.values],
                      *[f"[{VERDICT_STYLE[j[2]]}]{_ratio_cell(*j)}[/]"
                        for j in zip(r.ratios, r.ratio_intervals, r.verdicts)])
    console = Console()
    if not console.is_terminal:
        console = Console(width=200)
    console.print(table)
    for suite, g in geo.items():
        console.print(f"{suite}: geometric mean " + ", ".join(f"{escape(labels[i + 1])}/{escape(labels[0])} {x:.3f}"
                                                             for i, x in enumerate(g)))
    console.print(escape(note))
    if only:
        console.print(f"{len(only)} case(s) not in every run (not compared):")
        for m, k in only:
            console.print(f"  {escape(m)}: {escape(' '.join(k))}")


def gate_outcomes(runs: list[RunDocument], rows: list[Row], floor: float) -> list[dict]:
    """--fail-below: every shared case of every candidate run whose ratio's interval is not
    wholly at or above floor: {machine, case, ratio, interval, outcome: fail | inconclusive}."""
    labels = names(runs)
    out = []
    for r in rows:
        for i, (ratio, interval) in enumerate(zip(r.ratios, r.ratio_intervals)):
            outcome = gate(interval, floor)
            if outcome != "pass":
                out.append({"machine": labels[i + 1], "case": [r.suite, r.case_id, r.target, r.impl],
                            "ratio": ratio, "interval": list(interval), "outcome": outcome,
                            "values": [r.values[0], r.values[i + 1]]})
    return out


def cmd_compare(args) -> int:
    if not 0 < args.min_effect < 1:  # NaN fails this too; 0 would call every difference a change
        raise UsageError(f"--min-effect {args.min_effect:g}: give a fraction above 0 and under 1 (0.1 is 10%)")
    if args.fail_below is not None and not 0 < args.fail_below < math.inf:
        raise UsageError(f"--fail-below {args.fail_below:g}: give a ratio above 0 (0.9: at least 90% of the baseline)")
    paths = list(args.runs)
    if args.reference:
        paths.insert(0, str(find_reference(args.reference)))
    # A fleet run document gives one column per node.
    loaded = [(p, node) for p in paths for node in split_by_node(load_run(p))]
    if len(loaded) < 2:
        raise UsageError("compare needs at least two run documents, a fleet run, or --reference NAME and a run")
    runs = [r for _, r in loaded]
    reruns = [node for p in args.rerun for node in split_by_node(load_run(p))]
    if any(r.run_id == runs[0].run_id and r.machine == runs[0].machine for r in reruns):
        raise UsageError("a --rerun is the baseline itself: give other runs of the baseline's machine")
    strangers = sorted({r.machine for r in reruns if not same_machine(r, runs[0])})
    if strangers:
        raise UsageError(f"--rerun of another machine ({', '.join(strangers)}; the baseline is {runs[0].machine}): "
                         "reruns measure the baseline machine's own run-to-run noise")
    rows, geo, only = compare(runs, args.min_effect, reruns)
    note = rule_note(rows, args.min_effect, len(reruns))
    gated = gate_outcomes(runs, rows, args.fail_below) if args.fail_below is not None else []
    if args.json:
        print(json.dumps({"runs": [{"path": p, "machine": r.machine} for p, r in loaded],
                          "rows": [r.__dict__ for r in rows], "geomean": geo,
                          "only_in_some": [{"machine": m, "case": list(k)} for m, k in only],
                          "rule": {"min_effect": args.min_effect, "noise_k": NOISE_K, "reruns": len(reruns),
                                   "note": note},
                          **({"gate": {"fail_below": args.fail_below, "not_passed": gated}}
                             if args.fail_below is not None else {})}, indent=1))
    elif args.markdown:
        print(to_markdown(runs, rows, geo, only, note))
    else:
        print_table(runs, rows, geo, only, note)
    if args.fail_below is not None:
        # Fails closed: a case whose ratio's interval is under the floor, a ratio that cannot
        # be formed (a baseline of 0), and a baseline case that a candidate did not pass
        # (failed, skipped, missing). An interval across the floor is inconclusive: said,
        # not failed.
        low = [g for g in gated if g["outcome"] == "fail"]
        unsure = [g for g in gated if g["outcome"] == "inconclusive"]
        lost = not_passed_by_candidates(runs)
        unjudged = not_in_baseline(runs)
        for g in (low + unsure)[:20]:
            lo, hi = g["interval"]
            where = (f"no ratio (figures {g['values'][0]!r} and {g['values'][1]!r}: a ratio needs finite positive "
                     "figures)" if math.isnan(g["ratio"]) else f"ratio {g['ratio']:.3f} (interval {lo:.3f}-{hi:.3f})")
            said = f"under {args.fail_below:g}" if g["outcome"] == "fail" else f"inconclusive: across {args.fail_below:g}"
            print(f"aibench: {g['machine']}: {' '.join(g['case'])} {where} {said}", file=sys.stderr)
        if len(low + unsure) > 20:
            print(f"aibench: ... and {len(low + unsure) - 20} more", file=sys.stderr)
        if low:
            print(f"aibench: {len(low)} shared case(s) under {args.fail_below:g}x of {names(runs)[0]}", file=sys.stderr)
        if unsure:
            print(f"aibench: {len(unsure)} shared case(s) inconclusive: the interval straddles {args.fail_below:g}x "
                  "(not failed; rerun, or measure longer)", file=sys.stderr)
        for machine, key, status in lost[:20]:
            print(f"aibench: {machine}: {' '.join(key)} {status} (passed on the baseline)", file=sys.stderr)
        if len(lost) > 20:
            print(f"aibench: ... and {len(lost) - 20} more case(s) of the baseline not passed", file=sys.stderr)
        for machine, key in unjudged[:20]:
            print(f"aibench: {machine}: {' '.join(key)} not gated: the baseline has no passed, unthrottled figure "
                  "for it", file=sys.stderr)
        if len(unjudged) > 20:
            print(f"aibench: ... and {len(unjudged) - 20} more case(s) the baseline has no figure for", file=sys.stderr)
        if not rows and not lost:
            print("aibench: no case of the baseline to compare: nothing passes the gate", file=sys.stderr)
        if low or lost or unjudged or not rows:
            return 1
    return 0


def same_machine(a: RunDocument, b: RunDocument) -> bool:
    """Two runs of one machine: the same machine name, and the same CPU model and host
    name wherever both fingerprints record them."""
    if a.machine != b.machine:
        return False
    for path in (("cpu", "model"), ("hostname",)):
        x, y = a.system, b.system
        for part in path:
            x = x.get(part) if isinstance(x, dict) else None
            y = y.get(part) if isinstance(y, dict) else None
        if x and y and x != y:
            return False
    return True


def not_in_baseline(runs: list[RunDocument]) -> list[tuple[str, tuple]]:
    """(candidate machine, case key) for every case a later run passed with a figure
    that the baseline has no passed figure for (or ran throttled): the gate cannot judge it."""
    base = {c.key() for c in runs[0].cases if gateable(c)}
    return [(run.machine, c.key()) for run in runs[1:] for c in run.cases if gateable(c) and c.key() not in base]


def gateable(c: CaseResult) -> bool:
    """A case the gate can take a figure from: passed, with a headline, not throttled."""
    return c.status == PASSED and c.headline() is not None and not (c.telemetry or {}).get("throttled")


def not_passed_by_candidates(runs: list[RunDocument]) -> list[tuple[str, tuple, str]]:
    """(candidate machine, case key, failed | skipped | missing | without a figure | ran
    throttled) for every case the baseline (the first run) passed with a figure and a
    later run did not pass the same way."""
    base = [c.key() for c in runs[0].cases if gateable(c)]
    out = []
    for run in runs[1:]:
        cases = {c.key(): c for c in run.cases}
        for key in base:
            c = cases.get(key)
            if c is None or not gateable(c):
                out.append((run.machine, key, "missing" if c is None else c.status if c.status != PASSED else
                            "without a figure" if c.headline() is None else "ran throttled"))
    return out


def add_parser(sub) -> None:
    p_cmp = sub.add_parser("compare", help="runs (nodes) side by side, with ratios and noise-aware verdicts")
    p_cmp.add_argument("runs", nargs="*", help="run documents; the first is the baseline")
    p_cmp.add_argument("--reference", metavar="NAME", help="baseline: the shipped reference run NAME (aibench/reference/NAME*.json)")
    p_cmp.add_argument("--rerun", action="append", default=[], metavar="RUN",
                       help="another run of the baseline's machine (repeatable): each case's run-to-run CV is "
                            "measured over the baseline and its reruns")
    p_cmp.add_argument("--min-effect", type=float, default=DEFAULT_MIN_EFFECT, metavar="FRACTION",
                       help=f"the smallest difference a verdict calls better/worse (default {DEFAULT_MIN_EFFECT}, "
                            f"as asv's default factor 1.1); a case whose figure moves more between runs needs "
                            f"{NOISE_K:g} x its run-to-run CV")
    p_cmp.add_argument("--fail-below", type=float, default=None, metavar="RATIO",
                       help="exit 1 when a shared case's ratio to the baseline is below RATIO with its whole "
                            "interval; an interval across RATIO is reported inconclusive")
    fmt = p_cmp.add_mutually_exclusive_group()
    fmt.add_argument("--markdown", action="store_true")
    fmt.add_argument("--json", action="store_true")
