"""`aibench list`: the suites, their cases and impls, and which impls can run here."""

from __future__ import annotations

import json

from rich.console import Console
from rich.markup import escape

from .suites.base import TIERS


def add_parser(sub) -> None:
    p_list = sub.add_parser("list", help="suites, their cases and the impls available here")
    p_list.add_argument("--target", default="cpu")
    p_list.add_argument("--json", action="store_true")


def cmd_list(args) -> int:
    from .suites import all_suites
    from .targets import parse_target

    target = parse_target(args.target)
    out = []
    for suite in all_suites().values():
        entry = {"suite": suite.name, "package": suite.package, "description": suite.description,
                 "targets": list(suite.target_kinds),
                 "params": {p.name: p.help for p in suite.params.values()}, "cases": {}, "impls": []}
        if target.kind in suite.target_kinds:
            entry["cases"] = {t: len(suite.default_cases(t, target)) for t in TIERS}
        for impl in suite.impls():
            reason = impl.unavailable_reason(target) if target.kind in impl.target_kinds else \
                f"not on the {target.kind} target"
            entry["impls"].append({"impl": impl.name, "package": impl.package, "available": reason is None,
                                   "reason": reason, "description": impl.description})
        out.append(entry)
    if args.json:
        print(json.dumps(out, indent=1))
        return 0
    console = Console()
    for e in out:
        origin = f" [dim](from {escape(e['package'])})[/]" if e["package"] else ""
        console.print(f"[bold]{e['suite']}[/]{origin}: {e['description']}")
        console.print(f"  targets: {', '.join(e['targets'])}; params: "
                      + ", ".join(f"{k} ({v})" for k, v in e["params"].items()))
        if e["cases"]:
            console.print(f"  cases on {target}: " + ", ".join(f"{t} {n}" for t, n in e["cases"].items()))
        for i in e["impls"]:
            state = "[green]available[/]" if i["available"] else f"[yellow]unavailable[/]: {escape(i['reason'])}"
            origin = f", from {escape(i['package'])}" if i["package"] else ""
            console.print(f"  - {i['impl']:8s} {state}  ({escape(i['description'])}{origin})")
    return 0
