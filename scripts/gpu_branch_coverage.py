"""The coverage gate of scripts/gpu_coverage.sh: line coverage of aibench's GPU code in the
CPU-only run of the device double's tests, from the combined coverage.py data.

Whole GPU modules count every statement. Modules that are mostly not about GPUs
(preflight, fingerprint, accept) count only their GPU branches, named below: a function
(all its statements), or the `if`s inside a function whose condition contains a given text
(the `if` line and its body, not its else). A region that is no longer found fails the
gate, so the list follows the code. Prints one row per module and the total; exit 1 below --min.

    python scripts/gpu_branch_coverage.py --include     # coverage.py's include patterns
    python scripts/gpu_branch_coverage.py --data-file .coverage --rcfile coveragerc --min 90
"""

from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path

import coverage
from coverage.results import format_lines

SRC = Path(__file__).resolve().parents[1] / "src" / "aibench"
# Every suite's CUDA runners (suites/*/cuda.py) count as they are added.
WHOLE_MODULES = ("targets/cuda.py", *sorted(str(p.relative_to(SRC)) for p in SRC.glob("suites/*/cuda.py")),
                 "suites/interconnect/gpu.py", "energy/nvml.py")
# module -> (function, text in the condition of an `if` inside it, or None for the whole function)
GPU_BRANCHES = {
    "preflight.py": [("_nccl_version", None), ("_gpu_vbios", None), ("gpu_inventory", None), ("_gpus_seen", None)],
    "fingerprint.py": [("nvml_settings", None), ("_nvidia_driver", None), ("_gpus", None)],
    "accept/judge.py": [("hardware_problems", '"gpu_name" in hw'), ("hardware_problems", '"min_gpus" in hw')],
    "accept/__init__.py": [("make_spec", 'gpus and "cuda" in target_kinds')],
    "accept/lint.py": [("_gpu_bounds", None)],
}


def region_lines(path: Path, branches: list[tuple[str, str | None]]) -> set[int]:
    """The line numbers of `branches` in the module at `path`."""
    source = path.read_text()
    tree = ast.parse(source)
    functions = {node.name: node for node in ast.walk(tree) if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))}
    lines: set[int] = set()
    for name, condition in branches:
        function = functions.get(name)
        if function is None:
            raise LookupError(f"{path.name}: no function {name} (update GPU_BRANCHES in {Path(__file__).name})")
        if condition is None:
            lines.update(range(function.lineno, function.end_lineno + 1))
            continue
        found = [node for node in ast.walk(function)
                 if isinstance(node, ast.If) and condition in ast.get_source_segment(source, node.test)]
        if not found:
            raise LookupError(f"{path.name}: no `if` on {condition} in {name} (update GPU_BRANCHES in "
                              f"{Path(__file__).name})")
        for node in found:
            lines.update(range(node.lineno, node.body[-1].end_lineno + 1))
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--include", action="store_true", help="print the modules as coverage.py's include patterns")
    parser.add_argument("--data-file")
    parser.add_argument("--rcfile")
    parser.add_argument("--min", type=float, default=90.0)
    args = parser.parse_args(argv)
    if args.include:
        print(",".join(f"*/aibench/{module}" for module in (*WHOLE_MODULES, *GPU_BRANCHES)))
        return 0
    if not (args.data_file and args.rcfile):
        parser.error("--data-file and --rcfile are needed for the report")
    cov = coverage.Coverage(data_file=args.data_file, config_file=args.rcfile)
    cov.load()
    rows = [(module, "whole module", None) for module in WHOLE_MODULES]
    rows += [(module, "GPU branches: " + ", ".join(sorted({f for f, _ in branches})), branches)
             for module, branches in GPU_BRANCHES.items()]
    measured_files = cov.get_data().measured_files()
    total_statements = total_missed = 0
    width = max(len(what) for _, what, _ in rows)
    print(f"{'module':26} {'measured':{width}} {'stmts':>5} {'miss':>5} {'cover':>6}  missing")
    for module, what, branches in rows:
        # The file as measured: the installed package's (CI installs it, not editable), else
        # the source tree's (a module no test imported: all its statements missed).
        path = Path(next((f for f in measured_files if f.endswith(f"/aibench/{module}")), SRC / module))
        _, statements, _, missing, _ = cov.analysis2(str(path))
        if branches is not None:
            try:
                region = region_lines(path, branches)
            except LookupError as e:
                print(f"gpu_coverage: FAILED: {e}")
                return 1
            statements = [line for line in statements if line in region]
            missing = [line for line in missing if line in region]
        total_statements += len(statements)
        total_missed += len(missing)
        cover = 100.0 * (len(statements) - len(missing)) / len(statements) if statements else 100.0
        print(f"{module:26} {what:{width}} {len(statements):5} {len(missing):5} {cover:5.1f}%  "
              f"{format_lines(statements, missing)}")
    cover = 100.0 * (total_statements - total_missed) / total_statements
    print(f"{'TOTAL':26} {'':{width}} {total_statements:5} {total_missed:5} {cover:5.1f}%")
    if cover < args.min:
        print(f"gpu_coverage: FAILED: {cover:.1f}% is below {args.min:g}%")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
