#!/usr/bin/env python3
"""Issue #26's five named one-line bugs, each applied to a copy of the repository and
run against the tests that should kill it.

Each mutant is a textual patch (one exact line -> its replacement) stated below with the
bug it makes. Nothing touches the working tree this script lives in: the commit asked for
(HEAD by default) is exported with `git archive` into COPY, which is installed editable,
C++ core included, into its own venv made WITHOUT the system's site packages, so the
tests import the copy's aibench and no other. Python mutants take effect by editing the
copy's source (the editable install reads it); the C++ mutant rebuilds the copy's core
(only the changed file recompiles) and the original is rebuilt afterwards.

First the unmutated copy runs every test named below: a test that fails, or is skipped,
without the mutant kills nothing, so such a test is reported and the script exits 1.
Then each mutant runs each of its test targets on its own (`pytest -x -q`), and the table
says, per target, whether it failed and its first failing test. Exit 0 only when every
target passes unmutated and every mutant is killed by every target named for it.

    scripts/named_mutants.py [--rev REV] [--copy DIR] [--venv DIR] [--only NAME ...]

COPY and VENV are reused (the first C++ build takes minutes): the copy's files are made
those of the commit, rewriting only the ones that differ, and the install is rebuilt
incrementally where any did.
"""

from __future__ import annotations

import argparse
import filecmp
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Mutant:
    name: str
    bug: str  # what the one-line change does to a user
    path: str  # relative to the repository root
    old: str  # the exact line (stripped of indentation) replaced
    new: str
    tests: tuple[str, ...]  # pytest targets, each run on its own: the named killers, then fast unit tests

    @property
    def native(self) -> bool:
        return self.path.startswith("csrc/")


MUTANTS = (
    Mutant("peak-halved",
           "the CPU peak halved: the FMA's factor 2 (a multiply and an add) dropped, so percent_of_peak doubles",
           "src/aibench/targets/cpu.py",
           "value = cores * lanes_per_cycle * 2 * ghz * 1e9 / 1e12",
           "value = cores * lanes_per_cycle * ghz * 1e9 / 1e12",
           ("tests/test_bounds.py::test_the_cpu_peak_counts_two_flops_per_fma",
            "tests/test_cpu_peaks_hosts.py")),
    Mutant("ramp-reads",
           "storage reads counted during the ramp: the timed-window test of a read's completion dropped",
           "csrc/io/reader.cpp",
           "if (done >= sh.t_window && done < sh.t_end) {",
           "if (done < sh.t_end) {",
           ("tests/test_storage.py::test_reads_are_counted_once_in_the_timed_window_only[io_uring]",
            "tests/test_storage.py::test_reads_are_counted_once_in_the_timed_window_only[pread]")),
    Mutant("each-skip",
           'accept with select = "each" passes while one matching case was skipped',
           "src/aibench/accept/judge.py",
           'if not passed or (check.select == "each" and skipped):',
           "if not passed:",
           ("tests/test_fail_closed.py::test_accept_fails_closed[each-one-case-skipped]",
            "tests/test_accept_verdicts.py")),
    Mutant("diagnose-skip",
           "aibench diagnose does not name a node that skipped a case the other nodes ran",
           "src/aibench/diagnose.py",
           'if row.values or row.key in base or case.status != "skipped":',
           'if case.status != "skipped":',
           ("tests/test_fail_closed.py::test_diagnose_fails_closed[skipped-a-case-the-others-ran]",
            "tests/test_diagnose_verdicts.py")),
    Mutant("asv-inverted",
           "asv per-sample values inverted about the median (a faster sample exported as a lower throughput)",
           "src/aibench/asv_export.py",
           "samples[i] = [value * (median_t / t if higher else t / median_t) for t in times]",
           "samples[i] = [value * (t / median_t if higher else median_t / t) for t in times]",
           ("tests/test_asv_export.py::test_asv_samples_are_the_measured_figures_in_order",
            "tests/test_asv_export_values.py")),
)


def fail(message: str) -> None:
    print(f"named_mutants: {message}", file=sys.stderr)
    sys.exit(2)


def run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, text=True, capture_output=True, **kwargs)


# ---- the copy and its venv --------------------------------------------------------------

def export_copy(rev: str, copy: Path) -> tuple[str, bool]:
    """COPY holds the tree of `rev`; returns the commit and whether any file changed."""
    got = run(["git", "-C", str(ROOT), "rev-parse", "--verify", f"{rev}^{{commit}}"])
    if got.returncode != 0:
        fail(f"no such commit: {rev}")
    commit = got.stdout.strip()
    with tempfile.TemporaryDirectory() as tree:
        archive = subprocess.Popen(["git", "-C", str(ROOT), "archive", commit], stdout=subprocess.PIPE)
        subprocess.run(["tar", "-x", "-C", tree], stdin=archive.stdout, check=True)
        if archive.wait() != 0:
            fail(f"git archive {commit} failed")
        return commit, sync(Path(tree), copy)


def files_under(root: Path) -> set[Path]:
    return {p.relative_to(root) for p in root.rglob("*") if p.is_file() or p.is_symlink()}


def sync(tree: Path, copy: Path) -> bool:
    """Makes COPY's files (its build dir aside) those of TREE, rewriting only the ones that
    differ (so an incremental build recompiles only what changed, and a mutant a killed
    run left behind is undone); returns whether any file changed."""
    new = files_under(tree)
    old = {rel for rel in files_under(copy) if rel.parts[0] != "build"} if copy.exists() else set()
    for rel in old - new:
        (copy / rel).unlink()
    changed = bool(old - new)
    for rel in new:
        source, target = tree / rel, copy / rel
        if target.is_file() and not target.is_symlink() and filecmp.cmp(source, target, shallow=False):
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.is_symlink():
            target.unlink()
        shutil.copy(source, target, follow_symlinks=False)  # a new mtime: the build sees the change
        changed = True
    return changed


# One build dir inside the copy, the build's requirements in the venv: a rebuild after a
# C++ edit recompiles only that file.
BUILD_ARGS = ("--no-build-isolation", "-Cbuild-dir=build/nm")


def install(copy: Path, venv: Path, commit: str, changed: bool) -> Path:
    """The venv's python, with the copy installed editable: built afresh in a new venv,
    rebuilt incrementally where the copy changed, as it is where it did not."""
    python = venv / "bin" / "python"
    stamp = venv / ".named-mutants-commit"
    if stamp.exists() and python.exists():
        if changed or stamp.read_text().strip() != commit:
            print("rebuilding the copy's changes", flush=True)
            pip(python, *BUILD_ARGS, "-e", f"{copy}[test]")
            stamp.write_text(commit + "\n")
        return python
    if venv.exists():
        shutil.rmtree(venv)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)  # no system site packages
    pip(python, "scikit-build-core>=0.11", "pybind11>=2.12")
    print(f"building the copy's core into {copy / 'build' / 'nm'} (minutes)", flush=True)
    pip(python, *BUILD_ARGS, "-e", f"{copy}[test]")
    stamp.write_text(commit + "\n")
    return python


def pip(python: Path, *args: str) -> None:
    got = run([str(python), "-m", "pip", "install", "-q", *args])
    if got.returncode != 0:
        fail(f"pip install {' '.join(args)} failed:\n{got.stdout[-3000:]}{got.stderr[-3000:]}")


def rebuild(python: Path, copy: Path) -> None:
    pip(python, "--no-deps", *BUILD_ARGS, "-e", str(copy))


# ---- mutants and tests ------------------------------------------------------------------

def locate(copy: Path, m: Mutant) -> tuple[str, int]:
    """The file's text and the 1-based line of the mutant's old line (exactly one)."""
    text = (copy / m.path).read_text()
    lines = [i for i, line in enumerate(text.splitlines(), 1) if line.strip() == m.old]
    if len(lines) != 1:
        fail(f"{m.name}: {m.path} has {len(lines)} lines reading {m.old!r} (the tree changed: update the mutant)")
    return text, lines[0]


def mutated(text: str, m: Mutant) -> str:
    lines = text.splitlines(keepends=True)
    for i, line in enumerate(lines):
        if line.strip() == m.old:
            lines[i] = line.replace(m.old, m.new)
    return "".join(lines)


@dataclass
class Outcome:
    target: str
    rc: int
    failed: str  # the first failing test's id, "" when none failed
    summary: str  # pytest's last line: "3 passed, 1 skipped in 1.2s"

    @property
    def killed(self) -> bool:
        return self.rc == 1 and bool(self.failed)

    @property
    def clean_pass(self) -> bool:
        return self.rc == 0 and "skipped" not in self.summary


def run_tests(python: Path, copy: Path, target: str) -> Outcome:
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1",
               PATH=f"{python.parent}{os.pathsep}{os.environ['PATH']}")  # the copy's `aibench` command
    env.pop("PYTHONPATH", None)
    got = run([str(python), "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", target], cwd=copy, env=env)
    out = got.stdout + got.stderr
    failed = re.findall(r"^(?:FAILED|ERROR) (\S+)", out, re.M)
    lines = [line for line in out.strip().splitlines() if line.strip()]
    return Outcome(target, got.returncode, failed[0] if failed else "", lines[-1].strip("= ") if lines else "")


def table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rev", default="HEAD", help="the commit to mutate (default HEAD)")
    p.add_argument("--copy", type=Path, default=Path("/tmp/nm-copy"), help="where the copy goes")
    p.add_argument("--venv", type=Path, default=Path("/tmp/nm-venv"), help="the copy's own venv")
    p.add_argument("--only", nargs="+", choices=[m.name for m in MUTANTS], help="run only these mutants")
    args = p.parse_args(argv)
    for d in (args.copy, args.venv):
        if d.resolve() == ROOT or ROOT in d.resolve().parents:
            fail(f"{d} is inside the working tree {ROOT}: give a directory outside it")
    mutants = [m for m in MUTANTS if not args.only or m.name in args.only]

    commit, changed = export_copy(args.rev, args.copy)
    python = install(args.copy, args.venv, commit, changed)
    print(f"commit {commit}, copy {args.copy}, venv {args.venv}", flush=True)

    where = {m.name: locate(args.copy, m)[1] for m in mutants}
    unmutated_bad = []
    for target in dict.fromkeys(t for m in mutants for t in m.tests):
        o = run_tests(python, args.copy, target)
        print(f"unmutated  {target}: {o.summary}", flush=True)
        if not o.clean_pass:
            unmutated_bad.append(f"{target}: rc {o.rc}, {o.summary} {o.failed}".rstrip())
    if unmutated_bad:
        print("the unmutated copy does not pass every target cleanly (a failing or skipped test kills nothing):\n  "
              + "\n  ".join(unmutated_bad))
        return 1

    rows = [["mutant", "file:line", "test run", "killed", "first failing test"]]
    survivors = 0
    for m in mutants:
        original, line = locate(args.copy, m)
        source = args.copy / m.path
        try:
            source.write_text(mutated(original, m))
            if m.native:
                rebuild(python, args.copy)
            for target in m.tests:
                o = run_tests(python, args.copy, target)
                survivors += not o.killed
                print(f"{m.name:<14} {target}: {o.summary}", flush=True)
                rows.append([m.name, f"{m.path}:{line}", target, "yes" if o.killed else f"NO (rc {o.rc})",
                             o.failed or "-"])
        finally:
            source.write_text(original)
            if m.native:
                rebuild(python, args.copy)

    print()
    for m in mutants:
        print(f"{m.name}: {m.bug}\n  {m.path}:{where[m.name]}: {m.old}\n  -> {m.new}")
    print()
    print(table(rows))
    print(f"\n{len(rows) - 1 - survivors} of {len(rows) - 1} (mutant, test) pairs killed; commit {commit}")
    return 1 if survivors else 0


if __name__ == "__main__":
    sys.exit(main())
