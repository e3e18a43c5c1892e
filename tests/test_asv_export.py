"""`aibench run` results land in asv's results tree and `asv publish` builds pages from them."""

import io
import json
from pathlib import Path

import pytest

from aibench.asv_export import benchmark_dicts
from aibench.cli import main
from aibench.fingerprint import git_commit
from aibench.suites import get_suite

REPO = Path(__file__).resolve().parents[1]


def test_exported_benchmarks_match_asv_discovery_of_suites_dir():
    """suites/gemm.py, discovered by asv's own runner, defines exactly the benchmarks
    that aibench writes to benchmarks.json (names, params, units, versions)."""
    from asv_runner.discovery import list_benchmarks

    buf = io.StringIO()
    list_benchmarks(str(REPO / "suites"), buf)
    discovered = {b["name"]: b for b in json.loads(buf.getvalue())}
    for suite in ("gemm", "attention", "power"):
        for spec in get_suite(suite).asv_specs():
            for exported in benchmark_dicts(spec, suite):
                found = discovered[exported["name"]]
                for key in ("type", "unit", "version", "param_names", "params"):
                    assert found[key] == exported[key], key


@pytest.mark.skipif(git_commit() is None, reason="aibench not built from a git checkout")
def test_asv_publish_builds_pages_from_an_aibench_run(tmp_path):
    results = tmp_path / "results"
    for machine in ("node-a", "node-b"):
        code = main(["run", "--param", "m=512", "--param", "n=512", "--param", "k=512", "--param", "dtype=fp32",
                     "--time-budget", "0.05", "--machine", machine, "--output", str(tmp_path / f"{machine}.json"),
                     "--asv-results", str(results)])
        assert code == 0
        assert (results / machine / "machine.json").exists()
    code = main(["publish", str(tmp_path / "node-a.json"), str(tmp_path / "node-b.json"), "--repo", str(REPO),
                 "--results", str(results), "--html", str(tmp_path / "html")])
    assert code == 0
    index = json.loads((tmp_path / "html" / "index.json").read_text())
    assert "gemm.GemmCpu.track_tflops" in index["benchmarks"]
    assert set(index["machines"]) == {"node-a", "node-b"}
    graphs = list((tmp_path / "html" / "graphs").rglob("gemm.GemmCpu.track_tflops.json"))
    assert graphs, "no graph of the gemm benchmark"
    points = [json.loads(g.read_text()) for g in graphs]
    # Some graph holds a measured (non-null) TFLOP/s value for the 512^3 fp32 case.
    flat = json.dumps(points)
    assert any(ch.isdigit() for ch in flat)
