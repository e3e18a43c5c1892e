"""`aibench accept`: node acceptance against per-SKU specs (docs/accept.md).

    aibench accept --spec nvidia-h200-sxm [--report DIR] [RUN ...]   judge runs, or run what the spec needs
    aibench accept --make-spec RUN --tolerance 0.9 -o golden.toml    a spec from a known-good node
    aibench accept --verify DIR                                      the report still matches its data
    aibench accept --list-specs                                      the shipped specs
    aibench accept --lint SPEC...                                    thresholds against units and hardware bounds

Exit 0 only when every check of every node passes; 1 otherwise (a failed, missing or
inconclusive check, or hardware that is not the spec's); 2 for a usage error or a spec
that does not load (one line per problem).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import re
import sys
import time
from pathlib import Path
from typing import Any

from ..documents import load_run
from ..errors import UsageError
from ..request import RunRequest
from ..results import PASSED, RunDocument
from ..safe_write import MADE_SPEC, check_target, prepare_directory, write_file
from . import mark
from .judge import FAIL, INCONCLUSIVE, PASS, judge_runs, reference_paths
from .report import build_report, check_report_dir, verify_report, write_report
from .lint import lint_spec
from .spec import Check, Spec, SpecError, load_spec, load_specs, shipped_specs

# Sampling time per case of a rerun that tries to settle an inconclusive check.
RERUN_BUDGET_FACTOR = 4


def add_parser(sub) -> None:
    p = sub.add_parser("accept", help="accept nodes against a per-SKU spec (exit 0 only when every check passes)")
    p.add_argument("runs", nargs="*", help="run documents to judge (default: run what the spec needs here)")
    p.add_argument("--spec", metavar="SPEC[,SPEC]", help="shipped spec name(s) or TOML path(s)")
    p.add_argument("--report", type=Path, metavar="DIR", help="write report.html, report.md, report.json there")
    p.add_argument("--target", default=None, help="with no runs: the target for the spec's cuda checks (cuda:N)")
    p.add_argument("--machine", default=None, help="with no runs: machine name of the runs made")
    p.add_argument("--path", default=None, metavar="DIR", help="with no runs: storage test directory")
    p.add_argument("--ranks", type=int, default=None, metavar="N", help="with no runs: MPI ranks for interconnect")
    p.add_argument("--rerun-budget", type=float, default=120.0, metavar="SECONDS",
                   help="with no runs: at most this much sampling time to rerun inconclusive checks (default 120)")
    p.add_argument("--make-spec", type=Path, metavar="RUN", help="write a spec from a known-good node's run")
    p.add_argument("--tolerance", type=float, default=0.9, help="with --make-spec: fraction of each figure (default 0.9)")
    p.add_argument("-o", "--out", type=Path, metavar="SPEC.toml", help="with --make-spec: where the spec goes")
    p.add_argument("--verify", type=Path, metavar="DIR", help="check that a report matches its data")
    p.add_argument("--list-specs", action="store_true", help="list the shipped specs")
    p.add_argument("--lint", nargs="+", metavar="SPEC",
                   help="check these specs' thresholds against their units and the hardware's bounds, and stop "
                        "(exit 0: all pass; 2: a refused threshold, one line each)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--mark", choices=mark.SCHEDULERS, default=None,
                   help="write each node's verdict to the scheduler: slurm (features aibench_<spec> and its expiry on "
                        "accepted nodes, rejected ones drained with the failing checks) or k8s (labels aibench.io/spec, "
                        "verdict, valid-until; a NoSchedule taint on rejected nodes); see docs/accept.md")
    p.add_argument("--valid-for", type=float, default=None, metavar="DAYS",
                   help=f"with --mark: how long an acceptance holds (default {mark.DEFAULT_VALID_DAYS:g} days)")
    p.add_argument("--dry-run", action="store_true", help="with --mark: print the commands, change nothing")
    p.add_argument("--force", action="store_true",
                   help="let --report and -o replace regular files of yours that aibench did not write")


def cmd_accept(args, argv: list[str]) -> int:
    if args.list_specs:
        return _list_specs()
    if args.lint:
        return _lint(args.lint)
    if args.verify is not None:
        problems = verify_report(args.verify)
        for p in problems:
            print(f"aibench: verify: {p}", file=sys.stderr)
        print(f"{args.verify}: {'MISMATCH' if problems else 'the report matches its data'}")
        return 1 if problems else 0
    if args.make_spec is not None:
        return _make_spec(args)
    if not args.spec:
        raise UsageError("accept needs --spec SPEC (see aibench accept --list-specs), --make-spec RUN or --verify DIR")
    try:
        spec = load_specs([s.strip() for s in args.spec.split(",") if s.strip()])
        references = reference_paths(spec)
    except SpecError as e:
        raise UsageError("; ".join(e.problems) if len(e.problems) == 1 else
                         "the spec does not load:\n" + "\n".join(f"  {p}" for p in e.problems)) from None
    if args.report is not None:
        check_report_dir(args.report, args.force)  # before anything is measured
    if args.mark is None and (args.valid_for is not None or args.dry_run):
        raise UsageError("--valid-for and --dry-run go with --mark slurm|k8s")
    days = mark.valid_days(args.valid_for) if args.mark else None
    commands = [" ".join(argv)]
    if args.runs:
        run_files = [Path(r) for r in args.runs]
        docs = [load_run(r) for r in run_files]
        judgements = judge_runs(spec, docs, {n: load_run(p) for n, p in references.items()})
    else:
        run_files, docs, judgements, made = _run_and_judge(spec, args, references)
        if made is None:
            return 130
        commands += made
    report = build_report(spec, judgements, docs, run_files, spec.files, references, commands)
    if args.report is not None:
        write_report(args.report, report, run_files, spec.files, references, args.force)
    if args.json:
        print(json.dumps(report, indent=1))
    else:
        _print(report)
        if args.report is not None:
            print(f"report: {args.report / 'report.html'} (and report.md, report.json)", file=sys.stderr)
    verdict = 0 if report["accepted"] else 1
    if args.mark:
        return mark.mark(report, args.mark, days, args.dry_run) or verdict
    return verdict


def _list_specs() -> int:
    for name, path in shipped_specs().items():
        try:
            spec = load_spec(str(path))
            print(f"{name:28s} {len(spec.checks):3d} checks, tier {spec.tier:8s} {spec.description}")
        except SpecError as e:
            print(f"{name:28s} does not load: {e.problems[0]}")
    return 0


def _lint(names: list[str]) -> int:
    """Load each spec (loading lints it: lint.py) and print what lint could not check."""
    refused = False
    for name in names:
        try:
            spec = load_spec(name)
        except SpecError as e:
            refused = True
            for problem in e.problems:
                print(f"aibench: lint: {problem}", file=sys.stderr)
            continue
        print(f"{name}: {len(spec.checks)} {'check passes' if len(spec.checks) == 1 else 'checks pass'} lint")
        for note in spec.lint_notes:
            print(f"  note: {note}")
    return 2 if refused else 0


# ---- running what the spec needs ----------------------------------------------------------


def _exact_values(want: Any) -> list[Any] | None:
    """The values a params filter names exactly (None: a glob or a comparison)."""
    items = want if isinstance(want, list) else [want]
    if any(isinstance(i, str) and (any(ch in i for ch in "*?[") or re.match(r"^\s*[<>=!]", i)) for i in items):
        return None
    return items


def _suite_params(suite, checks: list[Check]) -> dict[str, list]:
    """The params of one suite's run: each parameter of the suite that every one of its
    checks names exactly, narrowed to those values."""
    params: dict[str, list] = {}
    for key in suite.params:
        values = [_exact_values(c.params[key]) if key in c.params else None for c in checks]
        if values and all(v is not None for v in values):
            params[key] = list(dict.fromkeys(x for v in values for x in v))
    return params


def plan_invocations(spec: Spec, args) -> list[RunRequest]:
    """The runs a spec needs, at its tier: per target kind, one run for the suites whose
    checks narrow them to the same params. A run's params apply to every suite in it, so
    suites narrowed differently run apart (interconnect's exact 16 GiB must not size the
    memory copies, nor a parameter name two suites share leak from one to the other)."""
    from ..suites import get_suite

    groups: dict[str, dict[str, list[Check]]] = {}
    for c in spec.checks:
        kind = spec.target if c.target == "*" else c.target
        groups.setdefault(kind, {}).setdefault(c.suite, []).append(c)
    invocations = []
    for kind, suites in groups.items():
        target = args.target if (args.target and args.target.split(":")[0] == kind) else kind
        runs: list[tuple[dict[str, list], list[str]]] = []  # (params, suites), in the spec's order
        for suite_name, checks in suites.items():
            params = _suite_params(get_suite(suite_name), checks)  # UsageError for an unknown suite
            same = next((names for p, names in runs if p == params), None)
            if same is None:
                runs.append((params, [suite_name]))
            else:
                same.append(suite_name)
        invocations += [_request(args, suites=names, target=target, tier=spec.tier, params=params)
                        for params, names in runs]
    return invocations


def _request(args, **fields) -> RunRequest:
    """A run of `aibench accept`, with the options of accept that its runs get too."""
    return RunRequest(record_asv=False, machine=args.machine, ranks=args.ranks,
                      suite_options={"path": args.path} if args.path is not None else {}, **fields)


def _aibench(request: RunRequest) -> int:
    """One run, in this process (its ranks launched when it needs MPI); its tables go to
    stderr, so that accept's own stdout holds only the verdicts (or the --json report)."""
    from ..report import print_run
    from ..session import run

    with contextlib.redirect_stdout(sys.stderr):
        report = run(request)
        print_run(report)
    return report.exit_code


def _run_and_judge(spec: Spec, args, references: dict[str, Path]):
    from ..runner import TIER_BUDGET_S

    if args.report is not None:
        out_dir = prepare_directory(args.report / "runs", "--report")
    else:
        out_dir = prepare_directory(Path("results") / "runs")
    stamp = time.strftime("%Y%m%dT%H%M%S")
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", spec.name)[:80]
    run_files: list[Path] = []
    commands: list[str] = []
    for i, request in enumerate(plan_invocations(spec, args)):
        output = out_dir / f"accept-{safe}-{stamp}-{i + 1}.json"
        request = dataclasses.replace(request, output=output)
        commands.append(" ".join(request.command_line()))
        code = _aibench(request)
        if code >= 128:  # interrupted (Ctrl-C, SIGTERM, SIGHUP): the run said so
            return [], [], [], None
        if code not in (0, 1) or not output.is_file():
            raise UsageError(f"`{commands[-1]}` exited {code}; nothing to judge")
        run_files.append(output)
    docs = [load_run(p) for p in run_files]
    loaded_refs = {n: load_run(p) for n, p in references.items()}
    judgements = judge_runs(spec, docs, loaded_refs)
    # Inconclusive checks: rerun their cases with more samples, within the budget.
    budget, reran = args.rerun_budget, False
    tier_budget = TIER_BUDGET_S[spec.tier]
    checks = {c.id: c for c in spec.checks}
    for j in judgements:
        for v in j.verdicts:
            if v.verdict != INCONCLUSIVE or budget <= 0:
                continue
            check = checks[v.check]
            matched = [c for d in docs for c in d.cases if check.matches(c) and c.status == PASSED]
            case = next((c for c in matched if f"{c.case_id} [{c.impl}]" == v.case), None)
            if case is None:
                continue
            seconds = tier_budget * RERUN_BUDGET_FACTOR
            budget -= seconds
            output = out_dir / f"accept-{safe}-{stamp}-rerun{len(run_files) + 1}.json"
            request = _request(args, suites=[case.suite], target=case.target, impls=[case.impl],
                               time_budget=seconds, params={k: [val] for k, val in case.params.items()}, output=output)
            commands.append(" ".join(request.command_line()))
            if _aibench(request) >= 128:
                return [], [], [], None
            if output.is_file():
                run_files.append(output)
                docs.append(load_run(output))
                reran = True
    if reran:
        judgements = judge_runs(spec, docs, loaded_refs)
    return run_files, docs, judgements, commands


# ---- printing -----------------------------------------------------------------------------


def _print(report: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console()
    if not console.is_terminal:
        console = Console(width=200)
    style = {PASS: "green", FAIL: "red", INCONCLUSIVE: "yellow", "missing": "magenta"}
    for n in report["nodes"]:
        table = Table(title=f"aibench accept: {escape(report['spec']['name'])} on {escape(n['node'])}")
        for col in ("check", "verdict", "case", "measured", "threshold", "margin", "reason"):
            table.add_column(col, justify="right" if col in ("measured", "margin") else "left")
        for c in n["checks"]:
            measured = f"{c['value']:.4g} {c['unit'] or ''}" if c["value"] is not None else ""
            margin = f"{c['margin']:+.1%}" if c["margin"] is not None else ""
            table.add_row(escape(c["check"]), f"[{style[c['verdict']]}]{c['verdict']}[/]", escape(c["case"] or ""),
                          escape(measured), escape(c["threshold"]), margin, escape(c["reason"]))
        console.print(table)
        for p in n["hardware_problems"]:
            console.print(f"[red]hardware does not match:[/] {escape(p)}")
        counts = ", ".join(f"{v} {k}" for k, v in n["counts"].items() if v)
        console.print(f"{escape(n['node'])}: {'[green]ACCEPTED[/]' if n['accepted'] else '[red]REJECTED[/]'} ({counts})")
    if len(report["nodes"]) > 1:
        rejected = report["rejected_nodes"]
        console.print(f"fleet: {len(report['nodes']) - len(rejected)} of {len(report['nodes'])} node(s) accepted"
                      + (", rejected:" if rejected else ""))
        for n in report["nodes"]:
            if not n["accepted"]:
                failing = [f"{c['check']} ({c['verdict']})" for c in n["checks"] if c["verdict"] != PASS]
                console.print(f"  {escape(n['node'])}: {escape(', '.join(failing) or 'hardware does not match')}")


# ---- --make-spec ----------------------------------------------------------------------------


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    return json.dumps(str(value))  # a JSON string is a valid TOML basic string


def _regex_escape(text: str) -> str:
    return re.escape(text).replace("\\ ", " ")


def _glob_escape(text: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", text)


def make_spec(doc: RunDocument, tolerance: float, name: str, source_file: str) -> str:
    from ..fleet import node_documents

    if len(node_documents(doc)) > 1:
        raise UsageError("--make-spec takes one node's run (this is a fleet run: split it, or judge the fleet "
                         "with ratio_to_fleet_median)")
    target_kinds = sorted({t.split(":")[0] for t in doc.targets})
    gpus = [d.get("name") for d in ((doc.system.get("gpus") or {}).get("devices") or [])]
    cpu = doc.system.get("cpu") or {}
    lines = ["# Written by `aibench accept --make-spec`: every passed case's headline figure of a",
             f"# known-good node's run, at {tolerance:g}x (lower-is-better metrics: divided by it).",
             "spec_version = 1", f"name = {_toml(name)}",
             f"description = {_toml(f'golden node {doc.machine} (run {doc.run_id}, {doc.started_at}) at {tolerance:g}x')}",
             f"tier = {_toml(doc.tier)}", f"target = {_toml(target_kinds[0] if len(target_kinds) == 1 else '*')}", "",
             "[hardware]"]
    hardware: dict[str, Any] = {}
    if gpus and "cuda" in target_kinds:
        hardware = {"gpu_name": "^" + _regex_escape(gpus[0]) + "$", "min_gpus": len(gpus)}
    elif cpu.get("model"):  # a CPU node is its CPU; a GPU node's host CPU may differ from node to node
        hardware = {"cpu_model": "^" + _regex_escape(str(cpu["model"])) + "$"}
    lines += [f"{k} = {_toml(v)}" for k, v in hardware.items()]
    count = 0
    for c in doc.cases:
        head = c.headline()
        if c.status != PASSED or head is None or not head[1].value > 0:  # no threshold from a figure of 0
            continue
        metric, m = head
        kind = c.target.split(":")[0]
        threshold = ("min", m.value * tolerance) if m.higher_is_better else ("max", m.value / tolerance)
        check_id = f"{c.suite}-{c.case_id}-{c.impl}-{kind}"
        refused = _lint_made_check(name, hardware, Check(
            id=check_id, suite=c.suite, metric=metric, source="", spec=name, case=_glob_escape(c.case_id),
            impl=_glob_escape(c.impl), target=kind, unit=m.unit, **{threshold[0]: float(f"{threshold[1]:.6g}")}))
        if refused:  # a figure lint refuses would make a spec that does not load
            lines += ["", f"# not a check: {check_id}: {refused}"]
            continue
        count += 1
        lines += ["", "[[check]]", f"id = {_toml(check_id)}",
                  f"suite = {_toml(c.suite)}", f"case = {_toml(_glob_escape(c.case_id))}",
                  f"impl = {_toml(_glob_escape(c.impl))}", f"target = {_toml(kind)}", f"metric = {_toml(metric)}",
                  f"{threshold[0]} = {_toml(float(f'{threshold[1]:.6g}'))}", f"unit = {_toml(m.unit)}",
                  f"source = {_toml(f'measured on {doc.machine} ({source_file}, run {doc.run_id}): {m.value:.6g} {m.unit}')}"]
    if not count:
        raise UsageError("the run has no passed case with a figure: nothing to make a spec from")
    return "\n".join(lines) + "\n"


def _lint_made_check(name: str, hardware: dict[str, Any], check: Check) -> str | None:
    """Why lint refuses a check --make-spec would write (lint.py), or None."""
    problems, _ = lint_spec(Spec(name=name, description="", tier="quick", target=check.target, files=[],
                                 hardware=[(name, hardware)], checks=[check]))
    return problems[0].split(": ", 1)[1] if problems else None


def _make_spec(args) -> int:
    if not 0 < args.tolerance <= 1:
        raise UsageError(f"--tolerance must be in (0, 1] (got {args.tolerance})")
    if args.out is None:
        raise UsageError("--make-spec needs -o SPEC.toml")
    check_target(args.out, MADE_SPEC, args.force, "-o")  # #27: it replaced any file; /dev/null tracebacked
    doc = load_run(args.make_spec)
    text = make_spec(doc, args.tolerance, args.out.stem, args.make_spec.name)
    write_file(args.out, text, MADE_SPEC, args.force, "-o")
    try:
        spec = load_spec(str(args.out))  # what was written must load
    except SpecError as e:
        raise UsageError(f"the spec made from {args.make_spec} does not load: {e.problems[0]}") from None
    print(f"{args.out}: {len(spec.checks)} checks from {args.make_spec} at {args.tolerance:g}x")
    return 0


