#!/usr/bin/env python3
"""Kill aibench every way a cluster does and print what each way leaves behind.

For each kind of run (gemm, storage, interconnect, a --pytest-benchmark file, preflight),
each signal (SIGTERM, SIGINT, SIGHUP, SIGKILL) and each victim (the `aibench` parent; for
the self-launched MPI runs also MPI rank 1; for the pytest run also the pytest child),
start a quick run in a scratch directory, wait until it is under way (a case saved, the
ranks or the benchmark running), send the signal, and report: the exit code, the
document's status and ended_by, the files left in --path, the files of the run left in
/dev/shm and /tmp (MPICH segments and hydra topology files its processes held, aibench's
own scratch directories named by their owner file) and how many of them the next run's
cleanup leaves, and processes of the run still alive (then killed).

    python scripts/signal_matrix.py [--only interconnect,pytest] [--signals SIGKILL]
    python scripts/signal_matrix.py --killed-ranks 10

--killed-ranks N runs N self-launched interconnect runs whose rank 1 is SIGKILLed and
prints `ls /dev/shm /tmp` before and after, and what each run left.

Needs aibench installed (and fio for the storage peer); the whole matrix takes minutes.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

from aibench import leftovers

PYTEST_FILE = """
import os
import pathlib
import time


def test_sleep(benchmark):
    pathlib.Path(os.environ["AIBENCH_SIGNAL_MARKER"]).write_text(str(os.getpid()))
    benchmark(time.sleep, 0.2)
"""

RUNS = {
    "gemm": ["run", "--suite", "gemm", "--quick", "--param", "dtype=fp32,fp64", "--time-budget", "1"],
    "storage": ["run", "--suite", "storage", "--quick", "--file-size", "256M", "--time-budget", "3", "--path", "{data}"],
    "interconnect": ["run", "--suite", "interconnect", "--quick", "--time-budget", "0.3"],
    "pytest": ["run", "--pytest-benchmark", "{pytest_file}", "--time-budget", "5"],
    "preflight": ["preflight", "--link-seconds", "5"],
}
MPI_RUNS = {"interconnect", "preflight"}
SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGKILL)
# aibench's own scratch directories (leftovers.owned_temp_dir) in the temporary directory
OWNED_DIR_PREFIXES = ("aibench-pytest-", leftovers.MPI_DIR_PREFIX)


def _processes_with(text: str) -> list[int]:
    out = []
    for p in psutil.process_iter(["cmdline"]):
        if p.info["cmdline"] and text in " ".join(p.info["cmdline"]):
            out.append(p.pid)
    return out


def _rank(pids: list[int], rank: int) -> int | None:
    for pid in pids:
        try:
            if psutil.Process(pid).environ().get("PMI_RANK") == str(rank):
                return pid
        except psutil.Error:
            pass
    return None


def _cases(doc: Path) -> int:
    try:
        return len(json.loads(doc.read_text())["cases"])
    except (OSError, ValueError, KeyError, TypeError):
        return 0


def _owned_dirs_of(pid: int) -> set[str]:
    found = set()
    tmp = tempfile.gettempdir()
    for name in os.listdir(tmp):
        path = os.path.join(tmp, name)
        if name.startswith(OWNED_DIR_PREFIXES) and leftovers._owner(path) and leftovers._owner(path)[0] == pid:
            found.add(path)
    return found


def _under_way(kind: str, scratch: Path, doc: Path) -> bool:
    if kind == "pytest":  # the benchmark is running
        return (scratch / "pytest.pid").exists()
    if kind == "preflight":  # rank 0 printed the rank map: the link check is next
        return (scratch / "stdout.txt").stat().st_size > 0
    return _cases(doc) >= 1


def trial(kind: str, sig: signal.Signals, victim: str) -> dict:
    scratch = Path(tempfile.mkdtemp(prefix="aibench-signal-"))
    data = scratch / "data"
    data.mkdir()
    pytest_file = scratch / "test_signal.py"
    pytest_file.write_text(PYTEST_FILE)
    doc = scratch / "run.json"
    args = [a.format(data=data, pytest_file=pytest_file) for a in RUNS[kind]]
    env = {**os.environ, "AIBENCH_SIGNAL_MARKER": str(scratch / "pytest.pid")}
    with open(scratch / "stdout.txt", "wb") as stdout:
        proc = subprocess.Popen([sys.executable, "-m", "aibench.cli", *args,
                                 *(["--no-asv"] if args[0] == "run" else []), "--output", str(doc)],
                                cwd=scratch, env=env, stdout=stdout, stderr=subprocess.DEVNULL)
    held: set[str] = set()
    owned: set[str] = set()
    deadline = time.monotonic() + 120
    while not _under_way(kind, scratch, doc) and proc.poll() is None and time.monotonic() < deadline:
        held |= set(leftovers.mpi_files_held_under(proc.pid))
        owned |= _owned_dirs_of(proc.pid)
        time.sleep(0.1)
    if kind == "storage":
        time.sleep(1.0)  # inside the second case: the test file is in use
    held |= set(leftovers.mpi_files_held_under(proc.pid))
    owned |= _owned_dirs_of(proc.pid)
    target = proc.pid
    if victim == "rank 1":
        target = _rank([p for p in _processes_with(str(scratch)) if p != proc.pid], 1) or proc.pid
    elif victim == "pytest child":
        target = int((scratch / "pytest.pid").read_text()) if (scratch / "pytest.pid").exists() else proc.pid
    os.kill(target, sig)
    try:
        code = proc.wait(timeout=90)
    except subprocess.TimeoutExpired:
        code = "hung"
    time.sleep(2)  # let orphans show themselves
    left = _processes_with(str(scratch))  # aibench, mpiexec, ranks, fio, pytest: all name the scratch dir
    for p in left:
        os.kill(p, signal.SIGKILL)
    killed = []
    for p in left:
        try:
            killed.append(psutil.Process(p))
        except psutil.Error:
            pass
    psutil.wait_procs(killed, timeout=10)  # reaped: no longer counted as a live process of the job
    try:
        d = json.loads(doc.read_text())
        status, ended_by = (d.get("status"), d.get("ended_by")) if d.get("schema") == "aibench.run" else ("report", "")
    except (OSError, ValueError):
        status, ended_by = "no document", None
    files = sorted(str(p.relative_to(data)) for p in data.rglob("*"))
    temp_left = sorted(p for p in held | owned if os.path.exists(p))
    partial = sorted(p.name for p in scratch.glob(".run.json.*.tmp"))
    # What the next run removes: a killed parent's job files, a killed run's scratch directories.
    leftovers.remove_killed_jobs_files()
    leftovers.remove_stale_dirs(tempfile.gettempdir(), "aibench-pytest-")
    after_next_run = sorted(p for p in temp_left if os.path.exists(p))
    cases = _cases(doc)
    shutil.rmtree(scratch, ignore_errors=True)
    return {"run": kind, "signal": sig.name, "victim": victim, "exit": code, "status": status,
            "ended_by": ended_by or "", "files_left_in_path": len(files), "shm_tmp_left": len(temp_left),
            "partial_docs": len(partial), "processes_left": len(left), "cases": cases,
            "left_after_next_run": len(after_next_run), "left_names": temp_left + partial}


def victims(kind: str) -> list[str]:
    return ["aibench", "rank 1"] if kind in MPI_RUNS else ["aibench", "pytest child"] if kind == "pytest" else ["aibench"]


def matrix(kinds: list[str], signals: list[signal.Signals]) -> int:
    rows = []
    for kind in kinds:
        for sig in signals:
            for victim in victims(kind):
                rows.append(trial(kind, sig, victim))
                print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    cols = ["run", "signal", "victim", "exit", "status", "ended_by", "cases", "files_left_in_path", "shm_tmp_left",
            "left_after_next_run", "partial_docs", "processes_left"]
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    for r in rows:
        print("| " + " | ".join(str(r[c]) for c in cols) + " |")
    return 0


def killed_ranks(n: int) -> int:
    def ls() -> str:
        return subprocess.run(["ls", "/dev/shm", "/tmp"], capture_output=True, text=True).stdout

    before = ls()
    print("$ ls /dev/shm /tmp   # before\n" + before)
    total = 0
    for i in range(n):
        row = trial("interconnect", signal.SIGKILL, "rank 1")
        total += row["shm_tmp_left"] + row["partial_docs"] + row["processes_left"]
        print(f"run {i + 1}: exit {row['exit']}, document {row['status']}, left: {row['left_names'] or 'nothing'}, "
              f"processes left: {row['processes_left']}")
    after = ls()
    print("\n$ ls /dev/shm /tmp   # after\n" + after)
    # Other users' runs on the machine come and go too: the names a run of MPI or aibench makes.
    new = sorted(set(after.split()) - set(before.split()))
    print("new since before, of the kinds MPI and aibench leave:",
          [n for n in new if n.startswith(("mpich_", "hydra_", "aibench-"))] or "none")
    print(f"{n} killed-rank runs; files and processes of those runs left: {total}")
    return 1 if total else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=",".join(RUNS), help="runs to try, comma-separated: " + ", ".join(RUNS))
    parser.add_argument("--signals", default=",".join(s.name for s in SIGNALS))
    parser.add_argument("--killed-ranks", type=int, default=None, metavar="N")
    args = parser.parse_args()
    if args.killed_ranks is not None:
        return killed_ranks(args.killed_ranks)
    kinds = [k for k in args.only.split(",") if k]
    unknown = [k for k in kinds if k not in RUNS]
    if unknown:
        parser.error(f"unknown run(s) {unknown}: choose from {', '.join(RUNS)}")
    try:
        signals = [signal.Signals[s] for s in args.signals.split(",") if s]
    except KeyError as e:
        parser.error(f"unknown signal {e}")
    return matrix(kinds, signals)


if __name__ == "__main__":
    sys.exit(main())
