#!/usr/bin/env python3
"""aibench's `mpi` all-reduce against the standard MPI benchmarks, on the same MPI.

  build    builds IMB-MPI1 (Intel MPI Benchmarks) and osu_allreduce (OSU Micro-Benchmarks)
           from source trees you point it at, with the mpicc that sits next to the mpiexec
           aibench launches with (aibench.mpi.find_mpiexec), into a scratch directory.
           Their sources are never copied into this repository.
  compare  runs, interleaved over several rounds (the order reversed every other round:
           A B C D E, E D C B A, ...), on the same mpiexec and rank count:
             aibench-pipelined  aibench run --suite interconnect --impl mpi --timing pipelined
             aibench-barrier    ... --timing barrier
             imb-sync-off       IMB-MPI1 Allreduce -sync off (back-to-back calls)
             imb                IMB-MPI1 Allreduce with its default -sync on (a barrier
                                after every call)
             osu                osu_allreduce (a barrier after every call)
           all fp32 sums out of place, the same iteration count for every size, and prints
           the per-call latency of each (median over rounds) with the pairs that time the
           same way side by side. aibench runs at --aibench-thread-level (default single:
           plain MPI_Init, as IMB and OSU call it); `multiple` shows what MPICH's other
           path under MPI_THREAD_MULTIPLE does to the figures (docs/interconnect.md).
           Each launch measures one size, the tools interleaved at each size. The load
           average is recorded before every measurement, and a host-state probe
           (osu_allreduce at 1 MiB) runs just before and after each: a second table keeps
           only the rounds where the host's state held for both tools of a pair.

  python scripts/mpi_peers.py build --imb-src ~/src/mpi-benchmarks --osu-src ~/src/osu-micro-benchmarks-7.4 \\
      --scratch /tmp/mpi-peers
  python scripts/mpi_peers.py compare --scratch /tmp/mpi-peers
  python scripts/mpi_peers.py table /tmp/mpi-peers/compare-<time>.json   # the table again

The OSU tree must have its `configure` (a release tarball has it; a git checkout needs
`autoreconf -fi` first). Needs make, a C and a C++ compiler.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from aibench import mpi

MiB = 1 << 20
SIZES = [MiB << k for k in range(7)]  # 1, 2, 4, ..., 64 MiB
TOOLS = ("aibench-pipelined", "aibench-barrier", "imb-sync-off", "imb", "osu")
# (numerator, denominator, why they are the same quantity): each pair times calls the same way.
PAIRS = (("aibench-pipelined", "imb-sync-off", "back-to-back calls"),
         ("aibench-barrier", "osu", "a barrier between calls, each call timed alone"),
         ("aibench-barrier", "imb", "a barrier between calls, each call timed alone"))
WITHIN = 0.15  # the agreement the issue asks for
# aibench's iteration rule (suites/interconnect/measure.py): at least round(10 x budget)
# iterations, at most 50, and min(1000, 40 MiB / size) above that. A budget of 5 s gives
# exactly 50 for every size from 1 MiB up, unless a size's 50 calls take more than 5 s.
AIBENCH_BUDGET_S = 5.0
ITERATIONS = 50
WARMUP = 5  # aibench's warm-up for 50 iterations (a tenth); OSU -x the same
# The host's state, probed just before and just after every measurement: osu_allreduce at
# 1 MiB, 20 calls. On a VM the host may move the vCPUs or load their siblings at any
# moment: on a 2-vCPU Zen 4 VM this figure moved between ~250 and ~1000 us from one
# measurement to the next, for every tool alike (docs/interconnect.md). A pair of
# measurements is compared in the same-state table only where the four probes around them
# agree within STATE_WITHIN (largest / smallest - 1).
PROBE_CALLS = 20
STATE_WITHIN = 0.25


class Failure(Exception):
    """A step failed for a reason stated in full."""


def mpi_bin() -> Path:
    mpiexec = mpi.find_mpiexec()
    if mpiexec is None:
        raise Failure("no mpiexec found (aibench.mpi.find_mpiexec): install the mpich wheel or set AIBENCH_MPIEXEC")
    return Path(mpiexec).resolve().parent


def run(cmd: list[str], cwd: Path | None = None, env: dict | None = None, log: Path | None = None,
        timeout: float = 1800) -> str:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    if log is not None:
        log.write_text(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
        raise Failure(f"{' '.join(map(str, cmd[:4]))} ... exited {proc.returncode}"
                      f"{f' (log: {log})' if log else ''}: " + " | ".join(tail))
    return proc.stdout


# ---- build -----------------------------------------------------------------------------------


def build(imb_src: Path, osu_src: Path, scratch: Path) -> dict:
    bindir = mpi_bin()
    mpicc, mpicxx = bindir / "mpicc", bindir / "mpicxx"
    for wrapper in (mpicc, mpicxx):
        if not os.access(wrapper, os.X_OK):
            raise Failure(f"{wrapper} not found next to {bindir / 'mpiexec'}: build against that MPI by hand")
    if not (imb_src / "src_cpp").is_dir():
        raise Failure(f"{imb_src} is not an Intel MPI Benchmarks tree (no src_cpp/)")
    if not (osu_src / "configure").is_file():
        raise Failure(f"{osu_src} has no configure script: use a release tarball, or run `autoreconf -fi` in it")
    scratch.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PATH": f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}"}
    wrappers = [f"CC={mpicc}", f"CXX={mpicxx}"]

    # IMB builds inside its tree: build in a copy, so that the user's tree stays clean.
    imb_tree = scratch / "imb"
    shutil.rmtree(imb_tree, ignore_errors=True)
    shutil.copytree(imb_src, imb_tree, ignore=shutil.ignore_patterns(".git"))
    print(f"building IMB-MPI1 in {imb_tree} ...", file=sys.stderr)
    # IMB's Makefile switches flags on the compiler's name: "mpicc"/"mpicxx" (on PATH).
    run(["make", "IMB-MPI1", "CC=mpicc", "CXX=mpicxx", f"-j{os.cpu_count() or 1}"], cwd=imb_tree, env=env,
        log=scratch / "imb-build.log")

    osu_build = scratch / "osu-build"
    shutil.rmtree(osu_build, ignore_errors=True)
    osu_build.mkdir()
    print(f"building osu_allreduce in {osu_build} ...", file=sys.stderr)
    run([str(osu_src.resolve() / "configure"), *wrappers], cwd=osu_build, env=env, log=scratch / "osu-configure.log")
    run(["make", "-C", "c/mpi/collective/blocking", "osu_allreduce"], cwd=osu_build, env=env,
        log=scratch / "osu-build.log")

    built = {"mpiexec": str(bindir / "mpiexec"), "mpicc": str(mpicc),
             "imb": str(imb_tree / "IMB-MPI1"),
             "osu": str(osu_build / "c" / "mpi" / "collective" / "blocking" / "osu_allreduce"),
             "imb_src": str(imb_src.resolve()), "osu_src": str(osu_src.resolve())}
    for key in ("imb", "osu"):
        if not os.access(built[key], os.X_OK):
            raise Failure(f"the build left no {built[key]}")
    (scratch / "peers.json").write_text(json.dumps(built, indent=2) + "\n")
    print(f"built: {built['imb']}\n       {built['osu']}\n(recorded in {scratch / 'peers.json'})")
    return built


# ---- one measurement per tool: {size: {"avg_us", "max_us", "iterations"}} --------------------


def parse_imb(text: str) -> dict[int, dict]:
    """IMB-MPI1's table: #bytes #repetitions t_min[usec] t_max[usec] t_avg[usec]."""
    rows = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 5 and all(re.fullmatch(r"[0-9.]+", p) for p in parts) and int(parts[0]) > 0:
            rows[int(parts[0])] = {"avg_us": float(parts[4]), "max_us": float(parts[3]), "iterations": int(parts[1])}
    return rows


def parse_osu(text: str) -> dict[int, dict]:
    """osu_allreduce -f: Size  Avg Latency(us)  Min Latency(us)  Max Latency(us)  Iterations."""
    rows = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 5 and not line.startswith("#") and all(re.fullmatch(r"[0-9.]+", p) for p in parts):
            rows[int(parts[0])] = {"avg_us": float(parts[1]), "max_us": float(parts[3]), "iterations": int(parts[4])}
    return rows


def measure(tool: str, peers: dict, ranks: int, thread_level: str, size: int) -> tuple[dict[int, dict], str]:
    """{size: figures} of one run of `tool` at one size, and the MPI thread level its ranks
    had (for IMB and OSU, which call plain MPI_Init: the level mpi_init_level() measures)."""
    launch = [peers["mpiexec"], "-n", str(ranks)]
    lo = hi = size
    if tool.startswith("imb"):
        sync = ["-sync", "off"] if tool == "imb-sync-off" else []  # IMB's default: -sync on
        out = run([*launch, peers["imb"], "Allreduce", "-npmin", str(ranks), "-msglog",
                   f"{lo.bit_length() - 1}:{hi.bit_length() - 1}", "-iter", str(ITERATIONS), "-iter_policy", "off",
                   "-time", "3600", *sync])  # IMB's default -time 10 drops sizes slower than 10 s
        return parse_imb(out), peers["init_level"]
    if tool == "osu":
        out = run([*launch, peers["osu"], "-m", f"{lo}:{hi}", "-T", "mpi_float", "-f", "-i", str(ITERATIONS),
                   "-x", str(WARMUP)])
        return parse_osu(out), peers["init_level"]
    timing = tool.split("-", 1)[1]
    with tempfile.TemporaryDirectory(prefix="mpi-peers-") as tmp:
        doc = Path(tmp) / "run.json"
        env = {**os.environ, "AIBENCH_MPIEXEC": peers["mpiexec"]}
        run([sys.executable, "-m", "aibench.cli", "run", "--suite", "interconnect", "--impl", "mpi",
             "--timing", timing, "--ranks", str(ranks), "--param", "pattern=allreduce",
             "--param", f"size={size}", "--param", "dtype=fp32",
             "--param", "inplace=false", "--time-budget", str(AIBENCH_BUDGET_S), "--no-asv",
             "--mpi-thread-level", thread_level, "--machine", "mpi-peers", "--output", str(doc)], env=env)
        document = json.loads(doc.read_text())
        cases, provided = document["cases"], document["system"]["mpi"]["thread_level"]
    rows = {}
    for case in cases:
        if case["status"] != "passed":
            raise Failure(f"aibench {case['case_id']} {case['status']}: {case.get('error')}")
        detail = case["impl_detail"]
        rows[case["params"]["size"]] = {"avg_us": detail["time_us_avg_rank"], "max_us": detail["time_us_max_rank"],
                                        "iterations": detail["iterations"]}
    return rows, provided


def probe(peers: dict, ranks: int) -> float:
    """The host-state probe: osu_allreduce's 1 MiB per-call latency over PROBE_CALLS calls, us."""
    out = run([peers["mpiexec"], "-n", str(ranks), peers["osu"], "-m", f"{MiB}:{MiB}", "-T", "mpi_float", "-f",
               "-i", str(PROBE_CALLS), "-x", "5"])
    rows = parse_osu(out)
    if MiB not in rows:
        raise Failure(f"the host-state probe (osu_allreduce at 1 MiB) printed no 1 MiB row:\n{out}")
    return rows[MiB]["avg_us"]


def same_state(*probes: float) -> bool:
    return max(probes) <= (1 + STATE_WITHIN) * min(probes)


def mpi_init_level() -> str:
    """The thread level plain MPI_Init gives on this MPI (what IMB and OSU run at), read
    with MPI_Query_thread in a process that initialises MPI the way they do."""
    code = ("import mpi4py; mpi4py.rc.threads = False\n"
            "from aibench.mpi import provided_thread_level; print(provided_thread_level())")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MPI4PY_RC_")}
    return run([sys.executable, "-c", code], env=env).strip()


# ---- compare ---------------------------------------------------------------------------------


def compare(scratch: Path, rounds: int, ranks: int, thread_level: str) -> dict:
    peers_file = scratch / "peers.json"
    if not peers_file.is_file():
        raise Failure(f"{peers_file} not found: run `{Path(__file__).name} build ... --scratch {scratch}` first")
    peers = json.loads(peers_file.read_text())
    peers["init_level"] = mpi_init_level()
    if Path(peers["mpiexec"]) != mpi_bin() / "mpiexec":
        raise Failure(f"the peers were built against {peers['mpiexec']}, aibench launches with "
                      f"{mpi_bin() / 'mpiexec'}: rebuild them")
    out = scratch / f"compare-{time.strftime('%Y%m%dT%H%M%S')}.json"
    # runs[tool][round] = {size: figures}
    runs: dict[str, list[dict[int, dict]]] = {tool: [] for tool in TOOLS}
    # levels[tool]: the MPI thread level each run's ranks had; loads[tool][round]: the
    # 1, 5 and 15 minute load averages just before that run.
    report = {"mpiexec": peers["mpiexec"], "ranks": ranks, "rounds": 0, "iterations": ITERATIONS,
              "load_before": os.getloadavg(), "library": _library_version(), "runs": runs,
              "aibench_thread_level": thread_level, "levels": {tool: [] for tool in TOOLS},
              "loads": {tool: [] for tool in TOOLS}, "probes": {tool: [] for tool in TOOLS}}
    started = time.time()
    for r in range(rounds):
        order = TOOLS if r % 2 == 0 else tuple(reversed(TOOLS))
        for tool in TOOLS:
            runs[tool].append({})
            report["probes"][tool].append({})
        # One size per launch, the tools interleaved at each size: a pair's two
        # measurements are seconds apart, so the host's state more often holds for both.
        for size in SIZES:
            for tool in order:
                print(f"round {r + 1}/{rounds}: {size // MiB} MiB {tool}", file=sys.stderr)
                report["loads"][tool].append(os.getloadavg())
                before = probe(peers, ranks)
                figures, level = measure(tool, peers, ranks, thread_level, size)
                report["probes"][tool][r][size] = [before, probe(peers, ranks)]
                runs[tool][r].update(figures)
                report["levels"][tool].append(level)
        # Every finished round is kept, should a later one fail.
        report.update(rounds=r + 1, load_after=os.getloadavg(), seconds=time.time() - started)
        out.write_text(json.dumps(report, indent=1, default=str) + "\n")
    print_table(report)
    print(f"\nevery round's figures: {out}")
    return report


def _library_version() -> str:
    from mpi4py import MPI

    return MPI.Get_library_version().strip().splitlines()[0]


def print_table(report: dict) -> None:
    runs, rounds = report["runs"], report["rounds"]

    def figures(tool: str, size: int) -> np.ndarray:
        """One figure per round (NaN for a round whose output lacked the size)."""
        return np.array([run[size]["avg_us"] if size in run else np.nan for run in runs[tool]])

    print(f"\nall-reduce fp32, {report['ranks']} ranks, {report['library']}; {rounds} interleaved rounds; "
          f"load average {report['load_before'][0]:.2f} before, {report['load_after'][0]:.2f} after")
    loads = [load[0] for per_tool in report.get("loads", {}).values() for load in per_tool]
    if loads:  # 1-minute load average just before each measurement
        print(f"1-minute load average before each measurement: {min(loads):.2f} to {max(loads):.2f} "
              f"on {os.cpu_count()} CPUs")
    levels = report.get("levels", {})
    if levels:  # what MPI_Query_thread said in each tool's ranks
        print("MPI thread level: " + ", ".join(f"{t} {'/'.join(sorted(set(levels.get(t) or ['?'])))}" for t in TOOLS))
    print("figure: per-call latency in us, the mean over ranks of each rank's average (IMB t_avg, OSU Avg "
          "Latency, aibench impl_detail.time_us_avg_rank);\n        median over rounds, spread = (max - min) / median")
    iters = {tool: sorted({run[s]["iterations"] for run in runs[tool] for s in SIZES if s in run}) for tool in TOOLS}
    print("iterations per size: " + ", ".join(f"{t} {'/'.join(map(str, iters[t]))}" for t in TOOLS))
    head = f"{'size':>6} " + " ".join(f"{t:>19}" for t in TOOLS)
    print("\n" + head)
    for size in SIZES:
        cells = []
        for tool in TOOLS:
            f = figures(tool, size)
            med = float(np.median(f))
            cells.append(f"{med:>10.1f} ±{100 * (f.max() - f.min()) / med / 2:>5.0f}%  " if np.isfinite(med) else "n/a")
        print(f"{size // MiB:>4}Mi " + " ".join(f"{c:>19}" for c in cells))
    print(f"\nratios: median over rounds of the ratio within a round [min, max]; 'ok' within {WITHIN:.0%}")
    print(f"{'size':>6} " + " ".join(f"{a + ' / ' + b:>36}" for a, b, _ in PAIRS))
    for size in SIZES:
        cells = []
        for a, b, _ in PAIRS:
            ratio = figures(a, size) / figures(b, size)
            med = float(np.median(ratio))
            verdict = "ok" if abs(med - 1) <= WITHIN else "DIFFERS"
            cells.append(f"{med:.2f} [{ratio.min():.2f}, {ratio.max():.2f}] {verdict}" if np.isfinite(med) else "n/a")
        print(f"{size // MiB:>4}Mi " + " ".join(f"{c:>36}" for c in cells))
    for a, b, why in PAIRS:
        print(f"  {a} / {b}: {why}")
    probes = report.get("probes")
    if not probes:
        return
    every = [us for per_tool in probes.values() for per_round in per_tool for pair in per_round.values()
             for us in pair]
    print(f"\nhost-state probe (osu_allreduce 1 MiB, {PROBE_CALLS} calls) before and after each measurement: "
          f"{min(every):.0f} to {max(every):.0f} us")
    print(f"ratios over the rounds where the four probes around the pair agree within {STATE_WITHIN:.0%} "
          "(the host's state held), rounds kept / rounds:")
    print(f"{'size':>6} " + " ".join(f"{a + ' / ' + b:>36}" for a, b, _ in PAIRS))
    for size in SIZES:
        cells = []
        for a, b, _ in PAIRS:
            keep = np.array([size in probes[a][r] and size in probes[b][r]
                             and same_state(*probes[a][r][size], *probes[b][r][size]) for r in range(rounds)])
            ratio = (figures(a, size) / figures(b, size))[keep]
            if not keep.any() or not np.isfinite(ratio).all():
                cells.append(f"n/a ({int(keep.sum())}/{rounds})")
                continue
            med = float(np.median(ratio))
            verdict = "ok" if abs(med - 1) <= WITHIN else "DIFFERS"
            cells.append(f"{med:.2f} [{ratio.min():.2f}, {ratio.max():.2f}] {verdict} ({int(keep.sum())}/{rounds})")
        print(f"{size // MiB:>4}Mi " + " ".join(f"{c:>36}" for c in cells))


def load_report(path: Path) -> dict:
    """A saved comparison, its sizes integers again (JSON keys are strings)."""
    try:
        report = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise Failure(f"cannot read {path}: {e}") from None
    report["runs"] = {tool: [{int(size): fig for size, fig in run.items()} for run in runs]
                      for tool, runs in report["runs"].items()}
    if "probes" in report:
        report["probes"] = {tool: [{int(size): pair for size, pair in per_round.items()} for per_round in rounds]
                            for tool, rounds in report["probes"].items()}
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="build IMB-MPI1 and osu_allreduce against aibench's MPI")
    b.add_argument("--imb-src", type=Path, required=True, help="an Intel MPI Benchmarks source tree")
    b.add_argument("--osu-src", type=Path, required=True, help="an OSU Micro-Benchmarks source tree (with configure)")
    b.add_argument("--scratch", type=Path, required=True, help="where to build (and keep results)")
    c = sub.add_parser("compare", help="interleaved rounds of aibench, IMB-MPI1 and osu_allreduce")
    c.add_argument("--scratch", type=Path, required=True, help="the directory `build` used")
    c.add_argument("--rounds", type=int, default=4, help="rounds of every tool (default 4)")
    c.add_argument("--ranks", type=int, default=2, help="MPI ranks (default 2)")
    c.add_argument("--aibench-thread-level", choices=mpi.THREAD_LEVELS, default=mpi.DEFAULT_THREAD_LEVEL,
                   help="aibench's --mpi-thread-level (default single: plain MPI_Init, as IMB and OSU)")
    t = sub.add_parser("table", help="print the table of a saved comparison (compare-*.json) again")
    t.add_argument("file", type=Path)
    args = parser.parse_args(argv)
    try:
        if args.command == "build":
            build(args.imb_src, args.osu_src, args.scratch)
        elif args.command == "table":
            print_table(load_report(args.file))
        else:
            if args.rounds < 1 or args.ranks < 2:
                raise Failure("--rounds must be at least 1 and --ranks at least 2")
            compare(args.scratch, args.rounds, args.ranks, args.aibench_thread_level)
    except Failure as e:
        print(f"mpi_peers: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
