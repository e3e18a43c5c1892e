"""Verdicts that fail closed (issue #26 item 2): every input of docs/accept.md's and
docs/comparing-nodes.md's "fails closed" tables, one test per row; and the shipped
reference runs, found from any directory (item 6)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from aibench.documents import find_reference, reference_dir
from aibench.results import CaseResult, Metric, RunDocument, Validation, write_atomic
from result_helpers import interval_stats

REPO = Path(__file__).resolve().parents[1]


def _case(case_id="x", value=1.0, spread=0.01, impl="aibench", status="passed", node=None, suite="gemm",
          params=None):
    t = 1.0 / value if value else 1.0
    return CaseResult(suite=suite, case_id=case_id, params=params or {"dtype": "fp32"}, target="cpu", impl=impl,
                      status=status,
                      metrics={"tflops": Metric(value, "TFLOP/s", True), "time_us": Metric(t * 1e6, "us", False)}
                      if status == "passed" else {},
                      stats=interval_stats(t, t * (1 - spread), t * (1 + spread)),
                      validation=Validation(status, 0.0, 1.0, None if status == "passed" else "no such library"),
                      node=node)


def _doc(cases, machine="node-a", system=None):
    return RunDocument(command=["aibench", "run"], machine=machine, tier="quick", targets=["cpu"],
                       system=system if system is not None else {"hostname": machine},
                       aibench={"version": "0", "commit": None}, cases=cases)


def _write(path: Path, doc: RunDocument) -> str:
    write_atomic(path, doc.to_dict())
    return str(path)


# ---- reference runs that travel (item 6) --------------------------------------------------


def test_the_reference_runs_are_package_data_found_by_name():
    root = reference_dir()
    assert root.parent == Path(__import__("aibench").__file__).parent  # inside the package, not the repo's results/
    assert {p.stem for p in root.glob("*.json")} >= {"cpu-2core-epyc-zen4-quick", "cpu-2core-epyc-zen4-standard",
                                                     "nvidia-h200-cuda-quick"}
    assert find_reference("nvidia-h200") == root / "nvidia-h200-cuda-quick.json"
    assert not (REPO / "results" / "reference").exists()  # one source of truth


def test_compare_and_accept_find_a_reference_from_outside_the_repository(tmp_path):
    """From a directory with no results/ of its own, as an installed user runs it."""
    run = _write(tmp_path / "run.json", _doc([_case("x", 1.0)]))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    compare = subprocess.run([sys.executable, "-m", "aibench.cli", "compare", "--reference",
                              "cpu-2core-epyc-zen4-quick", run, "--json"],
                             cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert compare.returncode == 0, compare.stderr
    assert json.loads(compare.stdout)["runs"][0]["path"].endswith("cpu-2core-epyc-zen4-quick.json")
    h200 = find_reference("nvidia-h200-cuda-quick")
    accept = subprocess.run([sys.executable, "-m", "aibench.cli", "accept", "--spec", "nvidia-h200-sxm-reference",
                             str(h200)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert accept.returncode == 0, accept.stdout + accept.stderr
    (tmp_path / "spec.toml").write_text(
        'spec_version = 1\nname = "t"\ntarget = "cuda"\n[[check]]\nid = "c"\nsuite = "gemm"\n'
        'metric = "tflops"\nratio_to_reference = 0.9\nreference = "nvidia-h200-cuda-quick"\nsource = "test"\n')
    by_name = subprocess.run([sys.executable, "-m", "aibench.cli", "accept", "--spec", "spec.toml", str(h200)],
                             cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert by_name.returncode == 0, by_name.stdout + by_name.stderr


def test_a_reference_name_is_never_a_path(capsys):
    from aibench.cli import main

    assert main(["compare", "--reference", "../../etc/passwd", "x.json"]) == 2
    assert "not a path" in capsys.readouterr().err
