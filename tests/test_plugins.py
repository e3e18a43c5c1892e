"""Suites and impls from other packages, through the `aibench.suites` / `aibench.impls`
entry points: the example package of examples/ (its distribution metadata written into a
directory on PYTHONPATH, as an install would), listed, run, validated and recorded like a
built-in one; a broken plugin is reported and never breaks a run; a plugin impl that
computes a wrong all-reduce fails its case."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from mpi_helpers import needs_mpi

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "aibench-example-plugin"


def _install(site: Path, name: str, entry_points: str, source: Path | None = None) -> None:
    """What pip would leave for a distribution: NAME-0.1.0.dist-info with its metadata."""
    info = site / f"{name.replace('-', '_')}-0.1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1.0\n")
    (info / "entry_points.txt").write_text(entry_points)


def _env(site: Path) -> dict:
    paths = [str(site), str(EXAMPLE / "src"), os.environ.get("PYTHONPATH", "")]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in paths if p)}


def _aibench(site: Path, cwd: Path, *args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "aibench.cli", *args], cwd=cwd, env=_env(site),
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def site(tmp_path):
    """The example plugin 'installed' (its entry points as pyproject.toml declares them)."""
    import tomllib

    project = tomllib.loads((EXAMPLE / "pyproject.toml").read_text())["project"]
    lines = []
    for group, eps in project["entry-points"].items():
        lines.append(f"[{group}]")
        lines += [f"{name} = {target}" for name, target in eps.items()]
    site = tmp_path / "site"
    _install(site, project["name"], "\n".join(lines) + "\n")
    return site


def test_listed_with_package_and_version(site, tmp_path):
    p = _aibench(site, tmp_path, "list", "--json")
    assert p.returncode == 0, p.stderr
    suites = {s["suite"]: s for s in json.loads(p.stdout)}
    assert suites["stream"]["package"] == "aibench-example-plugin 0.1.0"
    assert suites["gemm"]["package"] is None
    ic = {i["impl"]: i for i in suites["interconnect"]["impls"]}
    assert ic["reduce-bcast"]["package"] == "aibench-example-plugin 0.1.0" and ic["mpi"]["package"] is None


def test_plugin_suite_runs_validated_and_recorded(site, tmp_path):
    out = tmp_path / "run.json"
    p = _aibench(site, tmp_path, "run", "--suite", "stream", "--quick", "--param", "size=1M", "--time-budget", "0.1",
                 "--output", str(out), "--asv-results", str(tmp_path / "asv"))
    assert p.returncode == 0, p.stderr + p.stdout
    doc = json.loads(out.read_text())
    assert doc["aibench"]["plugins"] == ["aibench-example-plugin 0.1.0"]
    cases = doc["cases"]
    assert [c["case_id"] for c in cases] == ["copy-1M", "triad-1M"]
    for c in cases:
        assert c["status"] == "passed" and c["metrics"]["gbps"]["value"] > 0
        assert c["impl_detail"]["suite_package"] == "aibench-example-plugin 0.1.0"
        assert len(c["stats"]["samples_s"]) == c["stats"]["n"] >= 5
    bench = json.loads((tmp_path / "asv" / "benchmarks.json").read_text())
    assert "stream.Benchmarks.track_gbps" in bench  # no AsvSpec: a case table from the run
    p = _aibench(site, tmp_path, "compare", str(out), str(out), "--json")
    assert p.returncode == 0 and {r["case_id"] for r in json.loads(p.stdout)["rows"]} == {"copy-1M", "triad-1M"}
    # A suite that declares no chart gets the default one (its headline against its parameters).
    p = _aibench(site, tmp_path, "plot", str(out), "--out", str(tmp_path / "plots"))
    assert p.returncode == 0 and p.stdout.split()[0] == str(tmp_path / "plots" / "stream.png"), p.stderr


def test_a_broken_plugin_is_reported_and_the_rest_runs(tmp_path):
    site = tmp_path / "site"
    _install(site, "broken-plugin", "[aibench.suites]\nnope = no_such_module:Suite\n"
                                    "[aibench.impls]\ngemm.bad = no_such_module:Impl\n")
    p = _aibench(site, tmp_path, "list")
    assert p.returncode == 0
    assert "suite plugin 'nope'" in p.stderr and "impl plugin 'gemm.bad'" in p.stderr and "Traceback" not in p.stderr


def test_a_plugin_of_another_contract_version_is_refused_in_one_line(tmp_path):
    """A suite or impl written for another suite contract (registry.CONTRACT_VERSION) is not
    loaded: one warning line names it and both versions; the built-in suites still list."""
    from aibench.registry import CONTRACT_VERSION

    site = tmp_path / "site"
    _install(site, "old-plugin", "[aibench.suites]\nold = old_module:OldSuite\n"
                                 "[aibench.impls]\ngemm.old = old_module:OldImpl\n")
    (site / "old_module.py").write_text(
        "from aibench.suites.base import Impl, Suite\n"
        "class OldSuite(Suite):\n    name = 'old'\n    aibench_contract = ('suite', 0)\n"
        "class OldImpl(Impl):\n    name = 'old'\n    aibench_contract = ('impl', 0)\n")
    p = _aibench(site, tmp_path, "list")
    assert p.returncode == 0, p.stderr
    for what in ("suite plugin 'old'", "impl plugin 'gemm.old'"):
        line = next(line for line in p.stderr.splitlines() if what in line)
        assert f"contract version 0; this aibench has version {CONTRACT_VERSION}" in line
    assert "old" not in {line.split()[0] for line in p.stdout.splitlines() if line.strip()}
    assert "gemm" in p.stdout


@pytest.mark.parametrize("group, name, raising", [
    ("aibench.suites", "quitter", "raise SystemExit(0)"),  # #27: every command exited 0, run included
    ("aibench.impls", "gemm.quitter", "raise SystemExit(3)"),
    ("aibench.suites", "quitter", "raise GeneratorExit('odd')"),
])
@pytest.mark.parametrize("command", [["list"], ["run", "--suite", "gemm", "--quick", "--no-asv"]])
def test_a_plugin_that_ends_the_process_at_import_fails_closed(tmp_path, group, name, raising, command):
    site = tmp_path / "site"
    _install(site, "quitter-plugin", f"[{group}]\n{name} = quitter_module:Thing\n")
    (site / "quitter_module.py").write_text(f"{raising}\n")
    p = _aibench(site, tmp_path, *command)
    lines = p.stderr.strip().splitlines()
    assert p.returncode == 2, (p.returncode, p.stderr)
    assert len(lines) == 1 and f"plugin {name!r} (quitter_module:Thing) ended aibench while loading" in lines[0]
    assert not list(tmp_path.glob("results/runs/*.json"))


@needs_mpi
def test_plugin_allreduce_is_timed_and_checked_like_the_builtins(site, tmp_path):
    wrong = tmp_path / "wrong_allreduce.py"
    wrong.write_text(
        "from aibench_example.reduce_bcast import ReduceBcastAllreduce\n"
        "class BcastOnly(ReduceBcastAllreduce):\n"
        "    name = 'bcast-only'\n"
        "    def run(self):  # forgets the reduction: rank 0's input is broadcast\n"
        "        self.comm.Bcast([self.send if self.comm.Get_rank() == 0 else self.result, self.datatype], root=0)\n"
        "        if self.comm.Get_rank() == 0: self.result[:] = self.send\n")
    (site / "wrong_allreduce.py").write_text(wrong.read_text())
    _install(site, "wrong-plugin", "[aibench.impls]\ninterconnect.bcast-only = wrong_allreduce:BcastOnly\n")
    out = tmp_path / "ic.json"
    p = _aibench(site, tmp_path, "run", "--suite", "interconnect", "--impl", "reduce-bcast", "--impl", "bcast-only",
                 "--param", "pattern=allreduce", "--param", "size=4k", "--param", "inplace=false,true",
                 "--time-budget", "0.1", "--no-asv", "--output", str(out), "--ranks", "2", timeout=600)
    assert p.returncode == 1, p.stderr + p.stdout
    cases = {(c["impl"], c["params"]["inplace"]): c for c in json.loads(out.read_text())["cases"]}
    for inplace in (False, True):
        good, bad = cases[("reduce-bcast", inplace)], cases[("bcast-only", inplace)]
        assert good["status"] == "passed" and good["metrics"]["busbw_gbps"]["value"] > 0
        assert good["impl_detail"]["impl_package"] == "aibench-example-plugin 0.1.0"
        assert bad["status"] == "failed" and "wrong result" in bad["error"] and not bad["metrics"]
