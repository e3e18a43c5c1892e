"""docs/specs.md, generated from the shipped specs: one table per spec (check, metric,
threshold with its unit, source). A test fails when the file is stale; regenerate with

    python -m aibench.accept.specdoc            # writes docs/specs.md
    python -m aibench.accept.specdoc --check    # exit 1 when docs/specs.md is stale
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .spec import load_spec, shipped_specs
from .spread import whole_job

# Relative to the repository root, where it is run (an installed package has no docs/).
DOC = Path("docs") / "specs.md"


def _cell(text: str) -> str:
    """Text that stays inside one Markdown table cell."""
    return " ".join(text.split()).replace("|", "\\|")


def render() -> str:
    lines = ["# Shipped acceptance specs", "",
             "Generated from `src/aibench/accept/specs/*.toml` by `python -m aibench.accept.specdoc`; do not edit.",
             "Every spec here passes `aibench accept --lint` (docs/accept.md, \"Lint\"): each `min`/`max` is",
             "in its metric's unit, and each `min` lies between 5% of the hardware's bound and the bound,",
             "where a bound is known. Thresholds are as the judge uses them (in the metric's unit).", ""]
    for name, path in shipped_specs().items():
        spec = load_spec(str(path))
        own = [c for c in spec.checks if c.spec == spec.name]
        lines += [f"## {name}", "", _cell(spec.description or "(no description)"), ""]
        hardware = next((hw for spec_name, hw in spec.hardware if spec_name == spec.name), {})
        if hardware:
            lines += ["Hardware: " + ", ".join(f"`{k} = {v}`" for k, v in hardware.items()) + ".", ""]
        includes = [n for n, _ in spec.hardware if n != spec.name]  # every included file, depth first
        if includes:
            lines += ["Includes " + ", ".join(f"[{i}](#{i})" for i in includes) + " (with their checks).", ""]
        spreads = [c for c in spec.checks if c.spread and not whole_job(c.suite)]
        if spreads:  # judged as a row of its own per check (accept/spread.py)
            lines += ["Spread within a node (each device, a GPU of a `--per-gpu` fleet or a NUMA node of the memory "
                      "suite, within this of the node's best where the figures are per device): "
                      + ", ".join(f"{c.id} {c.spread['max']:.0%}" for c in spreads) + ".", ""]
        if own:
            lines += ["| check | metric | threshold | source |", "|---|---|---|---|"]
            lines += [f"| {_cell(c.id)} | {_cell(f'{c.suite} {c.metric}')} | {_cell(c.describe_threshold())} | "
                      f"{_cell(c.source)} |" for c in own]
            lines.append("")
        notes = [n for n in spec.lint_notes if n.startswith(f"{spec.name} check ")]
        if notes:
            lines += ["Not checked against a hardware bound:", ""]
            lines += [f"- {_cell(n.removeprefix(f'{spec.name} check '))}" for n in notes]
            lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m aibench.accept.specdoc", description=__doc__.splitlines()[0])
    p.add_argument("--check", action="store_true", help="exit 1 when docs/specs.md is not what the specs give")
    p.add_argument("--doc", type=Path, default=DOC, help="the file (default: docs/specs.md, from the repository root)")
    args = p.parse_args(argv)
    text = render()
    if args.check:
        stale = not args.doc.is_file() or args.doc.read_text(encoding="utf-8") != text
        print(f"{args.doc}: {'stale: run python -m aibench.accept.specdoc' if stale else 'up to date'}")
        return 1 if stale else 0
    args.doc.write_text(text, encoding="utf-8")
    print(f"{args.doc}: {len(shipped_specs())} specs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
