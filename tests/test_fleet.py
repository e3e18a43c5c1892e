"""Fleet runs (--fleet), `aibench diagnose`, and fleet documents in compare and the asv export."""

from __future__ import annotations

import json
import socket
import subprocess
import sys

import pytest

from aibench.cli import main
from aibench.diagnose import diagnose
from aibench.errors import UsageError
from aibench.fleet import fleet_rows, node_documents, node_labels, split_by_node
from aibench.results import FAILED, PASSED, SKIPPED, CaseResult, Metric, RunDocument, Validation
from mpi_helpers import clean_env, mpiexec, mpiexec_env_flag, needs_mpi


def test_node_labels_name_hosts_ranks_and_gpus():
    assert node_labels(["a", "b", "c"], per_gpu=False) == ["a", "b", "c"]
    assert node_labels(["a", "a", "b"], per_gpu=False) == ["a:rank0", "a:rank1", "b"]
    assert node_labels(["a", "a", "b", "b"], per_gpu=True) == ["a:gpu0", "a:gpu1", "b:gpu0", "b:gpu1"]


def _case(node, value, case_id="1024-fp32", impl="aibench", status=PASSED, error=None):
    metrics = {"tflops": Metric(value, "TFLOP/s", True), "time_us": Metric(1e6 / value, "us", False)} \
        if status == PASSED else {}
    return CaseResult(suite="gemm", case_id=case_id, params={}, target="cpu", impl=impl, status=status,
                      metrics=metrics, validation=Validation(status=status), error=error, node=node)


def _fleet(cases, nodes=("n0", "n1", "n2", "n3")):
    return RunDocument(command=["aibench"], machine="fleet", tier="quick", targets=["cpu"],
                       system={"hostname": "n0"}, aibench={"version": "0", "commit": None}, cases=cases,
                       fleet={"nodes": [{"node": n, "host": n, "rank": i, "local_rank": 0, "target": "cpu",
                                         "system": {"hostname": n}} for i, n in enumerate(nodes)],
                              "concurrency": "every node at once"})


def test_split_by_node_gives_each_node_its_cases_and_fingerprint():
    doc = _fleet([_case("n0", 1.0), _case("n1", 0.5), _case(None, 3.0, case_id="allreduce")], nodes=("n0", "n1"))
    parts = split_by_node(doc)
    assert [p.machine for p in parts] == ["n0", "n1", "fleet"]
    assert [len(p.cases) for p in parts] == [1, 1, 1]
    assert parts[1].system == {"hostname": "n1"} and parts[1].cases[0].metrics["tflops"].value == 0.5
    plain = RunDocument.from_dict(doc.to_dict() | {"fleet": None})
    assert split_by_node(plain) == [plain]
    # The run's default name is rank 0's host, which is also node 0's label.
    doc.machine = "n0"
    assert [p.machine for p in split_by_node(doc)] == ["n0", "n1", "n0-fleet"]
    assert [p.machine for p in node_documents(doc)] == ["n0", "n1"]


def test_diagnose_ignores_the_cases_the_fleet_ran_together():
    doc = _fleet([_case("n0", 1.0), _case("n1", 1.0), _case(None, 3.0, case_id="allreduce")], nodes=("n0", "n1"))
    doc.machine = "n0"
    assert diagnose(doc) == []


def test_fleet_rows_give_min_median_max_and_spread():
    doc = _fleet([_case("n0", 1.0), _case("n1", 0.9), _case("n2", 1.1), _case("n3", 0.5, status=FAILED)])
    (row,) = fleet_rows(split_by_node(doc))
    assert row.values == {"n0": 1.0, "n1": 0.9, "n2": 1.1} and row.failed == ["n3"] and row.skipped == []
    assert row.median == 1.0 and row.slowest == "n1" and row.spread == pytest.approx(0.2)


def test_fleet_summary_tells_failed_from_skipped(capsys):
    from rich.console import Console

    from aibench.fleet import print_fleet_summary

    doc = _fleet([_case("n0", 1.0), _case("n1", 0.0, status=FAILED), _case("n0", 0, impl="blas", status=SKIPPED),
                  _case("n1", 0, impl="blas", status=SKIPPED)], nodes=("n0", "n1"))
    print_fleet_summary(doc, Console(width=250, force_terminal=False))
    out = capsys.readouterr().out
    assert "failed on n1" in out and "skipped on every node" in out


def test_diagnose_names_the_slow_node_a_failed_case_and_a_missing_case():
    doc = _fleet([_case("n0", 1.00), _case("n1", 0.97), _case("n2", 0.60), _case("n3", 1.02),
                  _case("n0", 2.0, impl="blas"), _case("n1", 2.0, impl="blas"), _case("n2", 2.0, impl="blas"),
                  _case("n3", 0.0, impl="blas", status=FAILED, error="validation failed: max rel error 0.3")])
    doc.cases = [c for c in doc.cases if not (c.node == "n1" and c.impl == "blas")]  # n1 lacks one case
    found = {(f.node, f.impl): f for f in diagnose(doc, threshold=0.1)}
    assert set(found) == {("n2", "aibench"), ("n3", "blas"), ("n1", "blas")}
    slow = found[("n2", "aibench")]
    assert slow.reason == "below fleet median" and slow.reference == pytest.approx(0.985)
    assert slow.shortfall == pytest.approx(1 - 0.60 / 0.985)
    assert found[("n3", "blas")].reason == "failed" and "max rel error" in found[("n3", "blas")].detail
    assert found[("n1", "blas")].reason == "missing"
    # A looser threshold keeps the failures but lets the slow node pass.
    assert {f.node for f in diagnose(doc, threshold=0.5)} == {"n3", "n1"}


def test_diagnose_against_a_baseline_and_a_single_node_needs_one():
    node = RunDocument.from_dict(_fleet([_case("n0", 0.8)], nodes=("n0",)).to_dict())
    with pytest.raises(UsageError, match="baseline"):
        diagnose(node)
    baseline = _fleet([_case("b0", 1.0), _case("b1", 1.2), _case("b2", 1.1)], nodes=("b0", "b1", "b2"))
    (f,) = diagnose(node, baseline, threshold=0.1)
    assert f.node == "n0" and f.reason == "below baseline" and f.reference == pytest.approx(1.1)
    assert diagnose(node, baseline, threshold=0.3) == []


def test_diagnose_and_compare_through_the_cli(tmp_path, capsys):
    path = tmp_path / "fleet.json"
    path.write_text(json.dumps(_fleet([_case("n0", 1.0), _case("n1", 1.0), _case("n2", 0.5)],
                                      nodes=("n0", "n1", "n2")).to_dict()))
    assert main(["diagnose", str(path), "--json"]) == 1
    out = json.loads(capsys.readouterr().out)
    assert out["defective_nodes"] == ["n2"] and out["findings"][0]["shortfall"] == pytest.approx(0.5)
    assert main(["diagnose", str(path), "--threshold", "0.6"]) == 0
    assert main(["diagnose", str(path), "--threshold", "1.5"]) == 2
    assert main(["diagnose", str(tmp_path / "missing.json")]) == 2
    capsys.readouterr()
    # compare puts the nodes of one fleet document side by side.
    assert main(["compare", str(path), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [r["machine"] for r in out["runs"]] == ["n0", "n1", "n2"]
    assert out["rows"][0]["ratios"] == [pytest.approx(1.0), pytest.approx(0.5)]


def test_per_gpu_needs_fleet_and_the_cuda_target(capsys):
    assert main(["run", "--per-gpu", "--suite", "gemm"]) == 2
    assert "--per-gpu goes with --fleet and --target cuda" in capsys.readouterr().err


@needs_mpi
def test_three_rank_fleet_and_diagnose_names_the_slow_rank(tmp_path):
    """Three ranks on this machine stand for three nodes (in turns); rank 2's kernels are
    capped to the scalar path (AIBENCH_CPU_ISA), many times slower than the vector one
    whatever else loads the machine (one OpenMP thread of two was not: under load, two
    threads lose as much to descheduling), so diagnose must name it."""
    out = tmp_path / "fleet.json"
    cmd = [sys.executable, "-m", "aibench.cli", "run", "--fleet", "--suite", "gemm", "--quick",
           "--param", "m=1024", "--param", "n=1024", "--param", "k=1024", "--param", "dtype=fp32",
           "--impl", "aibench", "--time-budget", "0.5", "--output", str(out), "--no-asv", "--machine", "rack"]
    env = clean_env()
    env.pop("AIBENCH_CPU_ISA", None)  # ranks 0 and 1: the best path
    p = subprocess.run([*mpiexec(2), *cmd, ":", "-n", "1", *mpiexec_env_flag("AIBENCH_CPU_ISA", "scalar"), *cmd],
                       capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    assert p.returncode == 0, p.stderr[-2000:]
    assert "fleet summary: 3 nodes" in p.stdout
    doc = RunDocument.load(out)
    host = socket.gethostname()
    labels = [f"{host}:rank{r}" for r in range(3)]
    assert [n["node"] for n in doc.fleet["nodes"]] == labels
    assert sorted(c.node for c in doc.cases) == labels and all(c.status == PASSED for c in doc.cases)
    paths = {c.node: c.impl_detail.get("isa") for c in doc.cases}
    assert paths[labels[2]] == "scalar" and paths[labels[0]] != "scalar"
    findings = [f for f in diagnose(doc, threshold=0.25) if f.shortfall is not None]
    figures = {c.node: c.metrics["tflops"].value for c in doc.cases}
    assert findings and max(findings, key=lambda f: f.shortfall).node == labels[2], figures
    d = subprocess.run([sys.executable, "-m", "aibench.cli", "diagnose", str(out), "--threshold", "0.25"],
                       capture_output=True, text=True, timeout=60, env=clean_env())
    assert d.returncode == 1 and f"{labels[2]} (host {host}, rank 2)" in d.stdout
