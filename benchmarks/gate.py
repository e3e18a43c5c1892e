#!/usr/bin/env python3
"""Per-benchmark regression gate over pytest-benchmark's saved runs.

    python benchmarks/gate.py [--storage .benchmarks] [--history N] [--k 3] [--floor 0.02] [NEW.json]

`pytest benchmarks --benchmark-autosave` saves each run as
STORAGE/<machine_id>/NNNN_<commit>_<date>[_uncommitted-changes].json. NEW is the newest
saved run (or the given file, e.g. one written by --benchmark-json); the history is the N
saved runs of the same machine directory before it. For each benchmark:

  baseline  = median of its medians over the history runs
  noise     = how much its median moves from run to run, measured: 1.4826 x the median
              absolute deviation of the history's log medians (never below the standard
              error of a median those runs' own spread implies); with one earlier run only,
              that run's spread between rounds, IQR / 1.349 / median
  threshold = max(floor, k x noise)

and it regressed when NEW's median > baseline x (1 + threshold). Prints a table; exit 1 when
any benchmark regressed, 0 otherwise, 2 on bad input (no saved runs, unreadable JSON).
See docs/kernel-benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
from pathlib import Path

import numpy as np

MAD_TO_SIGMA = 1.4826  # sigma of a normal distribution per median absolute deviation
IQR_TO_SIGMA = 1.349  # IQR of a normal distribution per sigma
SE_MEDIAN = 1.2533  # standard error of a sample median per sigma / sqrt(n)


class BadInput(Exception):
    """Input the gate cannot judge: exit 2 with the message."""


def machine_id() -> str:
    """The directory pytest-benchmark saves this interpreter's runs in (its get_machine_id)."""
    return "{}-{}-{}-{}".format(platform.system(), platform.python_implementation(),
                                ".".join(platform.python_version_tuple()[:2]), platform.architecture()[0])


def load_run(path: Path) -> dict:
    """{'path', 'aibench' (what conftest recorded), 'benchmarks': {fullname: stats}}; stats
    holds name, median, iqr, stddev, rounds (seconds)."""
    try:
        data = json.loads(path.read_text(encoding="utf8"))
        benchmarks = {}
        for b in data["benchmarks"]:
            s = b["stats"]
            benchmarks[b.get("fullname") or b["name"]] = {
                "name": b["name"], "median": float(s["median"]), "iqr": float(s.get("iqr") or 0.0),
                "stddev": float(s.get("stddev") or 0.0), "rounds": int(s.get("rounds") or 1)}
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise BadInput(f"cannot read saved run {path}: {type(e).__name__}: {e}") from None
    return {"path": path, "aibench": (data.get("machine_info") or {}).get("aibench"), "benchmarks": benchmarks}


def saved_runs(directory: Path) -> list[Path]:
    """A machine directory's saved runs, oldest first (by pytest-benchmark's NNNN counter)."""
    return sorted(directory.glob("[0-9][0-9][0-9][0-9]_*.json"), key=lambda p: p.name)


def machine_dir(storage: Path) -> Path:
    dirs = sorted(d for d in storage.iterdir() if d.is_dir() and saved_runs(d)) if storage.is_dir() else []
    if not dirs:
        raise BadInput(f"no saved runs under {storage} (run `pytest benchmarks --benchmark-autosave` first)")
    mine = storage / machine_id()
    if mine in dirs:
        return mine
    if len(dirs) == 1:
        return dirs[0]
    raise BadInput(f"{storage} holds runs of several machines ({', '.join(d.name for d in dirs)}) and none "
                   f"of {machine_id()}: pass NEW.json from the one to judge")


def select_runs(storage: Path, new: Path | None, history: int) -> tuple[Path, list[Path]]:
    """(NEW, its history: up to `history` saved runs before it, oldest first)."""
    storage = Path(str(storage).removeprefix("file://"))
    if new is not None:
        if not new.is_file():
            raise BadInput(f"no such file: {new}")
        new = new.resolve()
        same_storage = storage.is_dir() and new.parent.parent == storage.resolve()
        directory = new.parent if same_storage else machine_dir(storage)
        earlier = [p for p in saved_runs(directory) if p.resolve() != new and (not same_storage or p.name < new.name)]
    else:
        runs = saved_runs(machine_dir(storage))
        new, earlier = runs[-1], runs[:-1]
    if not earlier:
        raise BadInput(f"no saved run before {new.name} to compare with: the gate measures each benchmark's "
                       "noise from earlier runs (save the base commit's benchmarks 3 or more times)")
    return new, earlier[-history:] if history > 0 else earlier


def noise(history: list[dict]) -> tuple[float, str]:
    """Relative run-to-run noise of one benchmark's median (see the module docstring) and
    where it came from."""
    medians = np.array([s["median"] for s in history])
    # Spread between rounds, as a relative sigma: the IQR's when there is one, else stddev's.
    within = np.array([(s["iqr"] / IQR_TO_SIGMA if s["iqr"] > 0 else s["stddev"]) / s["median"] for s in history])
    if len(history) == 1:
        return float(within[0]), "within-run"
    logs = np.log(medians)
    run_to_run = MAD_TO_SIGMA * float(np.median(np.abs(logs - np.median(logs))))
    rounds = np.array([s["rounds"] for s in history])
    standard_error = float(np.median(SE_MEDIAN * within / np.sqrt(rounds)))
    return max(run_to_run, standard_error), f"{len(history)} runs"


def judge(new: dict, history: list[dict], k: float, floor: float) -> list[dict]:
    """One row per benchmark of NEW or of the history (see the module docstring)."""
    rows = []
    for key, s in new["benchmarks"].items():
        past = [run["benchmarks"][key] for run in history if key in run["benchmarks"]]
        if not past:
            rows.append({"name": s["name"], "new": s["median"], "verdict": "new"})
            continue
        baseline = float(np.median([p["median"] for p in past]))
        spread, source = noise(past)
        threshold = max(floor, k * spread)
        change = s["median"] / baseline - 1.0
        verdict = "REGRESSED" if change > threshold else ("faster" if change < -threshold else "ok")
        rows.append({"name": s["name"], "baseline": baseline, "new": s["median"], "change": change,
                     "noise": spread, "source": source, "threshold": threshold, "verdict": verdict})
    gone = {key: run["benchmarks"][key]["name"] for run in history for key in run["benchmarks"]}
    rows += [{"name": name, "verdict": "missing"} for key, name in gone.items() if key not in new["benchmarks"]]
    return rows


def _time(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.4g} {unit}"
    return f"{seconds / 1e-9:.4g} ns"


def _pct(x: float | None, signed: bool = False) -> str:
    return "-" if x is None else f"{100 * x:{'+' if signed else ''}.1f}%"


def table(rows: list[dict]) -> str:
    header = ("benchmark", "baseline", "new", "change", "noise", "threshold", "verdict")
    body = [(r["name"], _time(r.get("baseline")), _time(r.get("new")), _pct(r.get("change"), True),
             _pct(r.get("noise")) + (f" ({r['source']})" if "source" in r else ""), _pct(r.get("threshold")),
             r["verdict"]) for r in rows]
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]

    def fmt(line):  # names and verdicts to the left, figures to the right
        cells = (c.ljust(w) if i in (0, 6) else c.rjust(w) for i, (c, w) in enumerate(zip(line, widths)))
        return "  ".join(cells).rstrip()

    return "\n".join([fmt(header), fmt(tuple("-" * w for w in widths)), *map(fmt, body)])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("new", nargs="?", type=Path, metavar="NEW.json",
                    help="run to judge (default: the newest saved run)")
    ap.add_argument("--storage", default=".benchmarks", help="pytest-benchmark's storage (default .benchmarks)")
    ap.add_argument("--history", type=int, default=10, metavar="N",
                    help="earlier saved runs to measure baseline and noise from (default 10)")
    ap.add_argument("--k", type=float, default=3.0, help="threshold in units of the measured noise (default 3)")
    ap.add_argument("--floor", type=float, default=0.02, help="smallest threshold, a fraction (default 0.02)")
    args = ap.parse_args(argv)
    try:
        if args.k <= 0 or args.floor < 0:
            raise BadInput("--k must be > 0 and --floor >= 0")
        new_path, history_paths = select_runs(Path(args.storage), args.new, args.history)
        new, history = load_run(new_path), [load_run(p) for p in history_paths]
        if not new["benchmarks"]:
            raise BadInput(f"{new_path} holds no benchmarks")
        if any(s["median"] <= 0 or not math.isfinite(s["median"])
               for run in [new, *history] for s in run["benchmarks"].values()):
            raise BadInput("a saved run holds a median that is not a positive number")
    except BadInput as e:
        print(f"gate: error: {e}", file=sys.stderr)
        return 2
    span = history_paths[0].name + ("" if len(history) == 1 else f" .. {history_paths[-1].name}")
    print(f"new: {new_path}\nhistory: {len(history)} run(s), {span}")
    if any(run["aibench"] != new["aibench"] for run in history):
        print(f"note: the history ran with other kernel paths or AIBENCH_CPU_ISA than NEW ({new['aibench']})")
    rows = judge(new, history, args.k, args.floor)
    print(table(rows))
    regressed = [r["name"] for r in rows if r["verdict"] == "REGRESSED"]
    print(f"\n{len(regressed)} of {sum('change' in r for r in rows)} compared benchmarks regressed "
          f"(threshold = max({args.floor:g}, {args.k:g} x noise))")
    return 1 if regressed else 0


if __name__ == "__main__":
    sys.exit(main())
