"""Every command that writes, against the same hostile targets (#27, docs/security.md
"What it writes, and where"): a symbolic link to a victim file, a device (a private
null device, 1:3, so that a regression cannot replace the real /dev/null), another
user's file, a directory, a read-only file. Each cell must be refused (exit 2, one line
naming the target) or safe (the command went on and the victim is unchanged); the
victim is checked byte for byte, with its owner and mode, in every cell.

WRITERS is the table of every option through which a command writes; the first test
checks it against the command line itself, so that a new writing option cannot be left
out of the matrix. Run with `-s -k matrix` to print the matrix."""

from __future__ import annotations

import argparse
import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest

from aibench.cli import build_parser, main
from aibench.fingerprint import git_commit
from mpi_helpers import needs_mpi

REPO = Path(__file__).resolve().parents[1]
NOBODY = 65534

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="files of another user and device nodes need root")

# Path options that only read (every other Path option writes, and must be in WRITERS).
READ_ONLY_OPTIONS = {("accept", "--make-spec"), ("accept", "--verify"), ("preview", "--html")}


@dataclass(frozen=True)
class Writer:
    """One way a command writes. `argv(inputs, out)` is the command writing at `out`;
    `target` is where in `out` a hostile thing is put ("" = `out` itself: a file option);
    `expect` is "refused", or "safe" where the command rightly goes on (the reason given)."""
    option: tuple[str, str]
    argv: Callable[[dict, Path], list[str]]
    target: str = ""
    expect: str = "refused"
    why_safe: str = ""
    needs_git: bool = False


TINY_RUN = ["--suite", "gemm", "--param", "m=64", "--param", "n=64", "--param", "k=64", "--param", "dtype=fp32",
            "--impl", "blas", "--time-budget", "0.05", "--machine", "node-a"]

WRITERS = [
    Writer(("run", "--output"), lambda i, out: ["run", *TINY_RUN, "--no-asv", "--output", str(out)]),
    Writer(("run", "--asv-results"),
           lambda i, out: ["run", *TINY_RUN, "--output", str(out.parent / "run-doc.json"), "--asv-results", str(out)],
           target="benchmarks.json", expect="safe",
           why_safe="the run and its document are kept; the asv export alone is skipped with a warning",
           needs_git=True),
    Writer(("preflight", "--output"), lambda i, out: ["preflight", "--link-seconds", "0.2", "--output", str(out)]),
    Writer(("accept", "--out"), lambda i, out: ["accept", "--make-spec", str(i["run"]), "-o", str(out)]),
    Writer(("accept", "--report"), lambda i, out: ["accept", str(i["run"]), "--spec", str(i["spec"]),
                                                    "--report", str(out)], target="report.html"),
    Writer(("plot", "--out"), lambda i, out: ["plot", str(i["run"]), "--out", str(out)], target="index.html"),
    Writer(("publish", "--results"), lambda i, out: ["publish", str(i["run"]), "--repo", str(REPO),
                                                      "--results", str(out), "--html", str(out.parent / "pages")],
           target="benchmarks.json", needs_git=True),
    # The pages replace --html whole: the hostile thing is the directory itself.
    Writer(("publish", "--html"), lambda i, out: ["publish", str(i["run"]), "--repo", str(REPO),
                                                   "--results", str(out.parent / "asv"), "--html", str(out)],
           needs_git=True),
]


def writing_options() -> set[tuple[str, str]]:
    """(command, option) of every Path-valued option of the command line, less READ_ONLY_OPTIONS."""
    found = set()
    for action in build_parser()._actions:
        if isinstance(action, argparse._SubParsersAction):
            for command, sub in action.choices.items():
                for a in sub._actions:
                    if a.type is Path and a.option_strings:
                        found.add((command, max(a.option_strings, key=len)))
    return found - READ_ONLY_OPTIONS


def test_every_writing_option_is_in_the_matrix():
    assert writing_options() == {w.option for w in WRITERS}


# ---- the hostile targets -----------------------------------------------------------------------


def _state(path: Path):
    """What must not change: the bytes (or listing), owner and mode, without following links."""
    st = os.lstat(path)
    if stat.S_ISDIR(st.st_mode):
        content = sorted((p.name, p.read_bytes()) for p in path.iterdir())
    elif stat.S_ISREG(st.st_mode):
        content = path.read_bytes()
    else:
        content = st.st_rdev
    return stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode), st.st_uid, content


def _symlink(target: Path, victim: Path) -> Path:
    victim.write_bytes(b"the victim's file\n")
    target.symlink_to(victim)
    return victim


def _device(target: Path, victim: Path) -> Path:
    os.mknod(target, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    return target


def _another_users_file(target: Path, victim: Path) -> Path:
    target.write_bytes(b"another user's file\n")
    os.chown(target, NOBODY, NOBODY)
    target.chmod(0o644)
    return target


def _directory(target: Path, victim: Path) -> Path:
    target.mkdir()
    (target / "keep.txt").write_bytes(b"a file in the directory\n")
    return target


def _read_only_file(target: Path, victim: Path) -> Path:
    target.write_bytes(b"a read-only file\n")
    target.chmod(0o444)
    return target


HOSTILE = {"symlink to a victim": _symlink, "device (null, 1:3)": _device,
           "another user's file": _another_users_file, "a directory": _directory,
           "read-only file": _read_only_file}


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict:
    """A tiny passed gemm run (square: plot draws it) and a spec made from it."""
    where = tmp_path_factory.mktemp("inputs")
    run, spec = where / "node-a.json", where / "spec.toml"
    assert main(["run", *TINY_RUN, "--no-asv", "--output", str(run)]) in (0, 1)
    assert main(["accept", "--make-spec", str(run), "-o", str(spec)]) == 0
    return {"run": run, "spec": spec}


def run_cell(writer: Writer, hostile: str, inputs: dict, tmp_path: Path, capsys) -> str:
    """One cell of the matrix: "refused" or "safe" (asserting what each means), or a failure."""
    if writer.needs_git and git_commit() is None:
        pytest.skip("publish needs aibench built from a git checkout")
    out = tmp_path / "out"
    if writer.target:
        out.mkdir()
    target = out / writer.target if writer.target else out
    victim = HOSTILE[hostile](target, tmp_path / "victim.txt")
    before = _state(victim), _state(target)
    capsys.readouterr()
    code = main(writer.argv(inputs, out))
    err = capsys.readouterr().err
    assert (_state(victim), _state(target)) == before, f"{writer.option} {hostile}: the target changed"
    if writer.expect == "refused":
        lines = err.strip().splitlines()
        assert code == 2 and len(lines) == 1 and str(target) in lines[0], (code, err)
        return "refused"
    assert code in (0, 1) and "asv export skipped" in err, (code, err)
    return "safe"


MATRIX: dict[str, dict[str, str]] = {}  # "command option (target)" -> hostile -> outcome


@pytest.fixture(scope="module", autouse=True)
def print_matrix(request):
    """After the module: the matrix of the cells that ran, in the terminal summary."""
    yield
    if not MATRIX:
        return
    write = request.config.pluginmanager.get_plugin("terminalreporter").write_line
    with request.config.pluginmanager.get_plugin("capturemanager").global_and_fixture_disabled():
        write("\n| command | " + " | ".join(HOSTILE) + " |")
        write("|---" * (len(HOSTILE) + 1) + "|")
        for name, cells in MATRIX.items():
            write(f"| {name} | " + " | ".join(cells.get(h, "-") for h in HOSTILE) + " |")
        for writer in WRITERS:
            if writer.expect == "safe":
                write(f"safe ({' '.join(writer.option)}): {writer.why_safe}")


@pytest.mark.parametrize("hostile", list(HOSTILE))
@pytest.mark.parametrize("writer", WRITERS, ids=lambda w: " ".join(w.option))
def test_writing_commands_refuse_hostile_targets(writer, hostile, inputs, tmp_path, capsys):
    outcome = run_cell(writer, hostile, inputs, tmp_path, capsys)
    name = " ".join(writer.option) + (f" (DIR/{writer.target})" if writer.target else "")
    MATRIX.setdefault(name, {})[hostile] = outcome


@pytest.mark.parametrize("writer", [w for w in WRITERS if w.option[0] != "preflight"],
                         ids=lambda w: " ".join(w.option))
def test_each_command_replaces_what_it_wrote_itself(writer, inputs, tmp_path, capsys):
    """The control: a second run over the first one's output is not refused, so that the
    refusals above are the hostile targets' doing. The mode of the replaced file stays."""
    if writer.needs_git and git_commit() is None:
        pytest.skip("publish needs aibench built from a git checkout")
    out = tmp_path / "out"
    assert main(writer.argv(inputs, out)) in (0, 1)
    target = out / writer.target if writer.target else out
    if target.is_file():
        target.chmod(0o600)
    assert main(writer.argv(inputs, out)) in (0, 1), capsys.readouterr().err
    if target.is_file():
        assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert "aibench: error" not in capsys.readouterr().err


@needs_mpi
def test_preflight_replaces_its_own_report(tmp_path):
    import subprocess
    import sys

    from mpi_helpers import clean_env

    out = tmp_path / "preflight.json"
    for _ in range(2):
        p = subprocess.run([sys.executable, "-m", "aibench.cli", "preflight", "--ranks", "2", "--link-seconds", "0.2",
                            "--output", str(out)], capture_output=True, text=True, timeout=240, env=clean_env())
        # 1: a link below the others on this shared machine; the report is written either way
        assert p.returncode in (0, 1) and "preflight:" in p.stdout, p.stdout[-2000:] + p.stderr[-2000:]
        assert json.loads(out.read_text())["schema"] == "aibench.preflight"
