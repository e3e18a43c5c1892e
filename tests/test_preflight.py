"""`aibench preflight` (preflight.py): the drift table's logic, a real run on 2 local ranks,
and the cluster examples in examples/cluster. Across hosts: tests/test_cluster.py."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from aibench.preflight import DRIFT_FIELDS, drift, failed_links
from mpi_helpers import clean_env, needs_mpi

ROOT = Path(__file__).resolve().parents[1]


def node(**changes):
    base = {key: f"same {key}" for key, _ in DRIFT_FIELDS}
    base["env"] = {"UCX_TLS": "tcp,self"}
    return {**base, **changes}


def test_nothing_drifts_on_identical_nodes():
    assert drift({h: node() for h in ("a", "b", "c")}) == []


def test_the_odd_node_is_named_against_the_majority():
    found = drift({"a": node(), "b": node(kernel="6.1.0-old"), "c": node(), "d": node()})
    assert [(d["field"], d["common"], d["odd"]) for d in found] == [("kernel", "same kernel", {"b": "6.1.0-old"})]


def test_with_no_majority_every_node_is_listed():
    found = drift({"a": node(microcode="0x1"), "b": node(microcode="0x2")})
    assert found[0]["common"] is None and found[0]["odd"] == {"a": "0x1", "b": "0x2"}


def test_env_drift_names_the_variables():
    found = drift({"a": node(), "b": node(env={"UCX_TLS": "tcp,self", "OMP_NUM_THREADS": "1"}), "c": node()})
    assert found[0]["field"] == "env" and found[0]["variables"] == ["OMP_NUM_THREADS"] and list(found[0]["odd"]) == ["b"]


def test_failed_links_name_both_ends():
    lines = failed_links({"slow_links": [{"src": "n1:1", "dst": "n2:2", "gbps": 0.03, "fraction_of_median": 0.25}],
                          "wrong_links": ["n3:3->n0:0"]})
    assert lines == ["n1:1 -> n2:2: 0.030 GB/s, 0.25x the median link", "n3:3->n0:0: data arrived wrong"]


def test_with_the_plan_only_its_pairs_must_have_figures():
    """#30: the plan measures some pairs; the others are not 'not measured' failures, but a
    planned pair without a figure still fails closed."""
    nan = float("nan")
    bw = [[None, 5.0, None], [5.0, None, None], [None, None, None]]
    matrix = {"participants": ["n0:0", "n1:1", "n2:2"], "bw_gbps": bw, "pairs": [(0, 1)]}
    assert failed_links(matrix) == []
    bw[1][0] = nan
    assert failed_links(matrix) == ["n1:1 -> n0:0: bandwidth not measured (nan)"]
    del matrix["pairs"]  # all-pairs: every pair must have its figures
    assert len(failed_links(matrix)) == 5


@needs_mpi
def test_preflight_on_two_local_ranks(tmp_path):
    out = tmp_path / "preflight.json"
    proc = subprocess.run([sys.executable, "-m", "aibench.cli", "preflight", "--ranks", "2", "--link-seconds", "0.2",
                           "--output", str(out)], capture_output=True, text=True, timeout=240, env=clean_env())
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    report = json.loads(out.read_text())
    assert [r["rank"] for r in report["ranks"]] == [0, 1] and report["ok"] is True
    assert report["links"]["wrong_bytes"] == 0 and len(report["links"]["participants"]) == 2
    node_report = next(iter(report["nodes"].values()))
    assert node_report["mpi_library"] and node_report["python"]
    assert "preflight: passed" in proc.stdout


@pytest.mark.parametrize("value", ["0", "-1", "nan", "61"])
def test_bad_link_seconds_is_one_line_exit_2(value):
    proc = subprocess.run([sys.executable, "-m", "aibench.cli", "preflight", "--link-seconds", value],
                          capture_output=True, text=True, timeout=60, env=clean_env())
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr


@pytest.mark.parametrize("flags, needle", [
    # #27: 300 ranks were launched (and hung); run caps at 256, and so does preflight.
    (["--ranks", "300"], "--ranks must be between 1 and 256 (got 300)"),
    (["--ranks", "0"], "--ranks must be between 1 and 256"),
    # #27: 0 and nan were accepted as the hang watchdog's timeout.
    (["--collective-timeout", "0"], "--collective-timeout must be a number of seconds above 0"),
    (["--collective-timeout", "nan"], "--collective-timeout must be a number of seconds above 0"),
    (["--collective-timeout", "inf"], "--collective-timeout must be a number of seconds above 0"),
    (["--collective-timeout", "-5"], "--collective-timeout must be a number of seconds above 0"),
])
@pytest.mark.parametrize("command", ["preflight", "run"])
def test_ranks_and_collective_timeout_are_checked_alike_by_run_and_preflight(command, flags, needle):
    extra = ["--suite", "interconnect", "--no-asv"] if command == "run" else []
    proc = subprocess.run([sys.executable, "-m", "aibench.cli", command, *extra, *flags],
                          capture_output=True, text=True, timeout=60, env=clean_env())
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and needle in lines[0], proc.stderr


def test_the_mpijob_example_runs_the_fleet():
    """examples/cluster/mpijob.yaml: a Kubeflow MPIJob (v2beta1) whose launcher runs
    preflight, the fleet and diagnose. Its schema is not checked (no package ships the
    CRD's); this checks its structure and commands."""
    yaml = pytest.importorskip("yaml")
    job = yaml.safe_load((ROOT / "examples/cluster/mpijob.yaml").read_text())
    assert job["apiVersion"] == "kubeflow.org/v2beta1" and job["kind"] == "MPIJob"
    specs = job["spec"]["mpiReplicaSpecs"]
    assert specs["Launcher"]["replicas"] == 1 and specs["Worker"]["replicas"] >= 2
    command = " ".join(specs["Launcher"]["template"]["spec"]["containers"][0]["args"])
    assert "aibench preflight" in command and "aibench run --fleet" in command and "aibench diagnose" in command
    ranks = int(command.split("aibench run --fleet")[0].rsplit("-n ", 1)[1].split()[0])
    assert ranks == specs["Worker"]["replicas"] * job["spec"]["slotsPerWorker"]


def test_the_sbatch_example_is_valid_bash():
    assert subprocess.run(["bash", "-n", str(ROOT / "examples/cluster/aibench.sbatch")]).returncode == 0
