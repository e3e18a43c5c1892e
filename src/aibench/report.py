"""What a run reports: the `RunReport` that session.run returns, its exit code, its record
in the asv results tree, and what a person reads (progress during a run, the summary
table at its end)."""

from __future__ import annotations

import json
import math
import signal
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from .compare import VERDICT_STYLE, judge
from .results import FAILED, PASSED, SKIPPED, CaseResult, RunDocument
from .stats import DEFAULT_MIN_EFFECT
from .suites import all_suites

_STYLE = {PASSED: "green", FAILED: "bold red", SKIPPED: "yellow"}


@dataclass
class RunReport:
    """What one run did (session.run). `document` and `cases` are rank 0's: a rank other
    than 0 has none, and prints nothing; a process that launched the ranks itself reads
    the document they wrote, and prints nothing either (rank 0 did)."""

    status: str  # the document's: complete, interrupted, failed
    ended_by: str | None
    exit_code: int  # 0, 1, 3 or 128 + signal (README.md, exit codes)
    output: Path | None
    document: RunDocument | None
    prints: bool = True  # whether this process prints the run's summary (print_run)
    cases: list[CaseResult] = field(init=False)

    def __post_init__(self) -> None:
        self.cases = list(self.document.cases) if self.document is not None else []


def exit_code(cases: list[CaseResult], fail_on_skip: bool = False, stopped_by: int | None = None) -> int:
    """128 + the signal when a signal stopped the run; else 1 when a case failed, when
    nothing was measured (every case skipped), or with fail_on_skip when any case was
    skipped; else 0."""
    if stopped_by is not None:
        return 128 + stopped_by
    if any(c.status == FAILED for c in cases):
        return 1
    skipped = [c for c in cases if c.status == SKIPPED]
    return 1 if (cases and len(skipped) == len(cases)) or (fail_on_skip and skipped) else 0


def record_in_asv(doc: RunDocument, results: Path, err: Console) -> None:
    """The run's cases in the asv results tree (a fleet: one asv machine per node); the
    run document is the record and asv a view of it, so a failure here only warns."""
    from .asv_export import export_run
    from .fleet import split_by_node

    try:
        for node_doc in split_by_node(doc):
            err.print(f"asv results: {export_run(node_doc, results)}")
    except Exception as e:  # noqa: BLE001 - the run document is the record; asv is a view
        err.print(f"[yellow]asv export skipped:[/] {e}")


def print_run(report: RunReport, as_json: bool = False) -> None:
    """The end of `aibench run` on the process that prints: the document as JSON, or the
    summary tables (a fleet's per-node table first); then why the exit code is what it is."""
    if not report.prints:
        return
    err = Console(stderr=True)
    doc, cases = report.document, report.cases
    if as_json:
        print(json.dumps(doc.to_dict(), indent=1))
    else:
        if doc.fleet:
            from .fleet import print_fleet_summary

            print_fleet_summary(doc)
            together = [c for c in cases if c.node is None]  # MPI suites, run by the fleet together
            if together:
                print_summary(together)
        else:
            print_summary(cases)
        err.print(f"run document: {report.output}")
    if cases and all(c.status == SKIPPED for c in cases):
        err.print(f"[yellow]nothing was measured:[/] all {len(cases)} case(s) were skipped (exit 1)")
    if report.status == "interrupted":
        err.print(f"interrupted: {len(cases)} finished case(s) saved in {report.output}")


class RunProgress:
    """A progress bar on stderr, one step per (case, impl)."""

    def __init__(self, total: int, enabled: bool = True):
        self.console = Console(stderr=True)
        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TimeElapsedColumn(), console=self.console, disable=not enabled, transient=False)
        self.task = self.progress.add_task("aibench", total=total)

    def __enter__(self):
        self.progress.__enter__()
        return self

    def __exit__(self, *exc):
        self.progress.__exit__(*exc)

    def start_case(self, label: str) -> None:
        self.progress.update(self.task, description=label)

    def end_case(self, result: CaseResult) -> None:
        if result.status == FAILED:
            self.console.print(f"[bold red]FAILED[/] {escape(f'{result.suite} {result.case_id} [{result.impl}]: {result.error}')}")
        self.progress.advance(self.task)


def _fmt(value: float | None, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.{digits}g}"


def comparisons(cases: list[CaseResult]) -> list[tuple[str, str, str, str, float, str]]:
    """(suite, case, target, 'impl/peer', ratio, verdict) for every pair the suite declares:
    the verdict as `aibench compare` gives it (intervals apart and an effect over the
    minimum; one run has no run-to-run noise to add)."""
    suites = all_suites()
    by_case: dict[tuple, dict[str, CaseResult]] = defaultdict(dict)
    for c in cases:
        if c.status == PASSED:
            by_case[(c.suite, c.case_id, c.target)][c.impl] = c
    rows = []
    for (suite, case_id, target), impls in by_case.items():
        for own, peer in getattr(suites.get(suite), "comparisons", ()):
            if own in impls and peer in impls:
                a, b = impls[own].headline(), impls[peer].headline()
                if a and b and a[0] == b[0] and b[1].value > 0:
                    ratio, _, verdict = judge(impls[peer], impls[own], DEFAULT_MIN_EFFECT)
                    rows.append((suite, case_id, target, f"{own}/{peer}", ratio, verdict))
    return rows


def summary_table(cases: list[CaseResult]) -> Table:
    table = Table(title="aibench results", show_lines=False)
    for col in ("suite", "case", "target", "impl", "status", "metric", "value", "% peak", "median", "n", "cv", "note"):
        table.add_column(col, justify="right" if col in ("value", "% peak", "median", "n", "cv") else "left")
    for c in cases:
        head = c.headline()
        summary = c.stats.summary if c.stats is not None else None
        median = summary.median if summary else None
        note = (c.error or (c.validation.reason if c.validation and c.status != PASSED else "")
                or (c.impl_detail or {}).get("note") or "")  # a suite's word on a passed case
        if c.telemetry and c.telemetry.get("throttled"):
            note = (note + " THROTTLED").strip()
        elif c.telemetry and c.telemetry.get("power_capped"):
            note = (note + " at power cap").strip()
        table.add_row(
            c.suite, c.case_id, c.target, c.impl, f"[{_STYLE[c.status]}]{c.status}[/]",
            head[0] if head else "", _fmt(head[1].value) if head else "",
            _fmt(c.percent_of_peak, 3) if c.percent_of_peak is not None else "",
            f"{median * 1e6:,.1f} us" if median else "", str(summary.n) if summary else "",
            f"{summary.cv * 100:.1f}%" if summary else "", escape(note[:90]),
        )
    return table


def comparison_table(cases: list[CaseResult]) -> Table | None:
    rows = comparisons(cases)
    if not rows:
        return None
    table = Table(title="own kernel vs peer (ratio of the headline metric, same run; green/red: better/worse "
                        f"beyond the noise and {DEFAULT_MIN_EFFECT:.0%})")
    for col in ("suite", "case", "target", "ratio of", "ratio"):
        table.add_column(col, justify="right" if col == "ratio" else "left")
    for suite, case_id, target, pair, ratio, verdict in rows:
        table.add_row(suite, case_id, target, pair, f"[{VERDICT_STYLE[verdict]}]{ratio:.3f}x {verdict}[/]")
    return table


def energy_table(cases: list[CaseResult]) -> Table | None:
    """Efficiency per case that ran the sustained power window."""
    rows = [c for c in cases if c.power]
    if not rows:
        return None
    table = Table(title="energy per FLOP (sustained window)")
    for col in ("suite", "case", "target", "impl", "source", "avg W", "idle W", "J/TFLOP", "GFLOP/s/W",
                "sustained/short", "meter cost", "note"):
        table.add_column(col, justify="left" if col in ("suite", "case", "target", "impl", "source", "note") else "right")
    for c in rows:
        p = c.power
        if not p.get("available"):
            table.add_row(c.suite, c.case_id, c.target, c.impl, "-", "", "", "", "", "", "", escape(p.get("reason", "")[:90]))
            continue
        pr = p["primary"]
        note = "THROTTLED (sustained rate dropped)" if p.get("throttled") else ""
        table.add_row(c.suite, c.case_id, c.target, c.impl, escape(", ".join(pr["sources"]))[:60],
                      _fmt(pr["avg_watts"]), _fmt(pr["idle_watts"]), _fmt(pr["joules_per_tflop"]),
                      _fmt(pr["gflops_per_watt"]), f"{p['sustained_vs_short']:.3f}",
                      f"{100 * p['meter_cost_fraction']:.3f}%", note)
    return table


def print_summary(cases: list[CaseResult], console: Console | None = None) -> None:
    console = console or Console()
    if not console.is_terminal:  # a log file: no terminal width to respect
        console = Console(width=200)
    console.print(summary_table(cases))
    for extra in (comparison_table(cases), energy_table(cases)):
        if extra is not None:
            console.print(extra)
    counts = {s: sum(1 for c in cases if c.status == s) for s in (PASSED, FAILED, SKIPPED)}
    console.print(f"{counts[PASSED]} passed, {counts[FAILED]} failed, {counts[SKIPPED]} skipped")
