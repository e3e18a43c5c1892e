#!/usr/bin/env python3
"""Kill `aibench run` every way a cluster does and print what each way leaves behind.

For each suite (gemm, storage, interconnect), each signal (SIGTERM, SIGINT, SIGKILL)
and each victim (the `aibench` parent; for the self-launched interconnect run also one
rank, MPI rank 1), start a quick run in a scratch directory, wait until it has saved a
case, send the signal, and report: the exit code, the document's status and ended_by,
the files left in --path, new /dev/shm entries, and processes of the run still alive.

    python scripts/signal_matrix.py [--markdown]

Needs aibench installed (and fio for the storage peer); takes about two minutes.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SUITES = {
    "gemm": ["--suite", "gemm", "--quick", "--param", "dtype=fp32,fp64", "--time-budget", "1"],
    "storage": ["--suite", "storage", "--quick", "--file-size", "256M", "--time-budget", "3"],
    "interconnect": ["--suite", "interconnect", "--quick", "--time-budget", "0.3"],
}
SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGKILL)


def _processes_with(text: str) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if text in (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"):
                    out.append(int(entry.name))
            except OSError:
                pass
    return out


def _rank(pid_candidates: list[int], rank: int) -> int | None:
    for pid in pid_candidates:
        try:
            env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if f"PMI_RANK={rank}".encode() in env:
            return pid
    return None


def _cases(doc: Path) -> int:
    try:
        return len(json.loads(doc.read_text())["cases"])
    except (OSError, ValueError, KeyError):
        return 0


def trial(suite: str, sig: signal.Signals, victim: str) -> dict:
    scratch = Path(tempfile.mkdtemp(prefix="aibench-signal-"))
    data = scratch / "data"
    data.mkdir()
    doc = scratch / "run.json"
    shm_before = set(os.listdir("/dev/shm"))
    proc = subprocess.Popen([sys.executable, "-m", "aibench.cli", "run", *SUITES[suite], "--path", str(data),
                             "--output", str(doc), "--no-asv"], cwd=scratch, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while _cases(doc) < 1 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    if suite == "storage":
        time.sleep(1.0)  # inside the second case: the test file is in use
    target = proc.pid
    if victim == "rank 1":
        target = _rank([p for p in _processes_with(str(doc)) if p != proc.pid], 1) or proc.pid
    os.kill(target, sig)
    try:
        code = proc.wait(timeout=90)
    except subprocess.TimeoutExpired:
        code = "hung"
    time.sleep(2)  # let orphans show themselves
    left = _processes_with(str(scratch))  # aibench, mpiexec, ranks, fio: all name the scratch dir
    for p in left:
        os.kill(p, signal.SIGKILL)
    try:
        d = json.loads(doc.read_text())
        status, ended_by = d["status"], d.get("ended_by")
    except (OSError, ValueError):
        status, ended_by = "no document", None
    files = sorted(str(p.relative_to(data)) for p in data.rglob("*"))
    shm = sorted(set(os.listdir("/dev/shm")) - shm_before)
    for name in shm:  # left by this trial: clean up for the next
        try:
            os.unlink(f"/dev/shm/{name}")
        except OSError:
            pass
    return {"suite": suite, "signal": sig.name, "victim": victim, "exit": code, "status": status,
            "ended_by": ended_by or "", "files_left_in_path": len(files), "shm_left": len(shm),
            "processes_left": len(left), "cases": _cases(doc), "shm_names": shm}


def main() -> int:
    rows = []
    for suite in SUITES:
        for sig in SIGNALS:
            for victim in (["aibench", "rank 1"] if suite == "interconnect" else ["aibench"]):
                rows.append(trial(suite, sig, victim))
                print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    cols = ["suite", "signal", "victim", "exit", "status", "ended_by", "cases", "files_left_in_path", "shm_left",
            "processes_left"]
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    for r in rows:
        print("| " + " | ".join(str(r[c]) for c in cols) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
