"""The command line: usage errors are one line and exit 2; runs write valid documents."""

import json
import subprocess
import sys

import pytest

from aibench.cli import main


def run_cli(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "aibench.cli", *args], capture_output=True, text=True,
                          timeout=timeout)


@pytest.mark.parametrize("args, message", [
    (["run", "--suite", "nosuch"], "unknown suite 'nosuch'"),
    (["run", "--impl", "nosuch"], "unknown impl 'nosuch'"),
    (["run", "--param", "m"], "malformed --param 'm'"),
    (["run", "--param", "m=abc"], "bad value 'abc' for gemm parameter 'm'"),
    (["run", "--param", "m=0"], "must be at least 1"),
    (["run", "--param", "dtype=fp13"], "bad value 'fp13'"),
    (["run", "--param", "dtype=fp16"], "not available on the cpu target"),
    (["run", "--param", "colour=red"], "unknown parameter 'colour'"),
    (["run", "--target", "gpu"], "unknown target 'gpu'"),
    (["run", "--suite", "power", "--target", "jax"], "does not run on target jax"),
    (["run", "--time-budget", "-1"], "--time-budget must be a number of seconds above 0"),
    (["run", "--param", "m=1000000", "--param", "n=1000000", "--param", "k=1000000", "--param", "dtype=fp64"],
     "does not fit: it needs"),
    (["frobnicate"], "invalid choice"),
])
def test_usage_errors_are_one_line_exit_2(args, message):
    p = run_cli(*args)
    assert p.returncode == 2, p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], p.stderr
    assert "Traceback" not in p.stderr


def test_run_one_point_writes_document_and_exits_0(tmp_path):
    out = tmp_path / "run.json"
    code = main(["run", "--param", "m=64", "--param", "n=48", "--param", "k=40", "--param", "dtype=fp32",
                 "--output", str(out), "--time-budget", "0.05", "--no-asv", "--machine", "t1"])
    assert code == 0
    doc = json.loads(out.read_text())
    assert doc["status"] == "complete" and doc["machine"] == "t1"
    assert {c["impl"] for c in doc["cases"]} >= {"aibench", "blas"}
    for c in doc["cases"]:
        if c["status"] == "skipped":  # only a peer that is not installed, saying so
            assert c["impl"] not in ("aibench", "blas") and c["validation"]["reason"], c
            continue
        assert c["status"] == "passed" and c["params"] == {"m": 64, "n": 48, "k": 40, "dtype": "fp32"}
        assert c["metrics"]["tflops"]["value"] > 0 and c["stats"]["n"] >= 5
        assert len(c["stats"]["samples_s"]) == c["stats"]["n"]
        assert c["validation"]["status"] == "passed"
        assert c["percent_of_peak"] > 0 and c["peak"]["source"]
        assert c["bound"]["metric"] == "tflops" and 0 < c["metrics"]["tflops"]["value"] <= c["bound"]["value"]


def test_wrong_result_fails_the_case_and_exit_code_is_1(tmp_path, monkeypatch):
    from aibench.suites.gemm import cpu

    def corrupt(self):  # after the last timed call, before validation
        self.c[0][2, 3] += 1.0  # one wrong element (row 2 is not among the sampled rows)

    monkeypatch.setattr(cpu.OwnKernelRunner, "collect_timed_output", corrupt)
    out = tmp_path / "run.json"
    code = main(["run", "--param", "m=32", "--param", "n=32", "--param", "k=32", "--param", "dtype=fp64",
                 "--output", str(out), "--time-budget", "0.05", "--no-asv"])
    assert code == 1
    cases = {c["impl"]: c for c in json.loads(out.read_text())["cases"]}
    assert cases["aibench"]["status"] == "failed" and cases["aibench"]["metrics"] == {}
    assert "wrong result" in cases["aibench"]["error"]
    assert cases["blas"]["status"] == "passed"


def test_exception_in_one_case_fails_it_and_the_rest_run(tmp_path, monkeypatch):
    from aibench.suites.gemm import cpu

    def boom(self, number):
        raise RuntimeError("injected fault")

    monkeypatch.setattr(cpu.BlasRunner, "time", boom)
    out = tmp_path / "run.json"
    code = main(["run", "--param", "m=16,32", "--param", "n=16", "--param", "k=16", "--param", "dtype=fp32",
                 "--output", str(out), "--time-budget", "0.05", "--no-asv"])
    assert code == 1
    cases = json.loads(out.read_text())["cases"]
    assert [c["status"] for c in cases if c["impl"] == "blas"] == ["failed", "failed"]
    assert [c["status"] for c in cases if c["impl"] == "aibench"] == ["passed", "passed"]
    assert "injected fault" in [c for c in cases if c["impl"] == "blas"][0]["error"]


def test_interrupted_run_keeps_finished_cases(tmp_path, monkeypatch):
    from aibench.suites.gemm import GemmSuite

    original = GemmSuite.run_case
    calls = {"n": 0}

    def interrupt_third(self, params, impl, ctx):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return original(self, params, impl, ctx)

    monkeypatch.setattr(GemmSuite, "run_case", interrupt_third)
    out = tmp_path / "run.json"
    code = main(["run", "--param", "m=8,16,24", "--param", "n=8", "--param", "k=8", "--param", "dtype=fp32",
                 "--impl", "aibench", "--output", str(out), "--time-budget", "0.05", "--no-asv"])
    assert code == 130
    doc = json.loads(out.read_text())
    assert doc["status"] == "interrupted"
    assert [c["case_id"] for c in doc["cases"]] == ["8x8x8-fp32", "16x8x8-fp32"]


def test_param_replaces_one_sweep_and_keeps_the_rest():
    from aibench.runner import plan_run
    from aibench.targets import Target

    planned = plan_run(["gemm"], "quick", Target("cpu"), ["aibench"], {"dtype": ["fp64"]})
    assert [p.params for p in planned] == [{"m": s, "n": s, "k": s, "dtype": "fp64"} for s in (512, 1024, 2048)]


def test_cuda_target_without_gpu_skips_with_reason(tmp_path, capsys):
    """Every case skipped, with its reason; a run that measured nothing exits 1 and says so."""
    from aibench.targets import cuda as cu
    from aibench.targets import Target

    if cu.unavailable_reason(Target("cuda", 0)) is None:
        pytest.skip("a GPU is present")
    out = tmp_path / "run.json"
    code = main(["run", "--target", "cuda", "--param", "m=64", "--param", "n=64", "--param", "k=64",
                 "--param", "dtype=bf16", "--output", str(out), "--no-asv"])
    assert code == 1 and "nothing was measured: all 4 case(s) were skipped" in capsys.readouterr().err
    cases = json.loads(out.read_text())["cases"]
    assert cases and all(c["status"] == "skipped" and c["validation"]["reason"] for c in cases)


def test_list_and_info_run():
    p = run_cli("list", "--json")
    assert p.returncode == 0
    gemm = next(s for s in json.loads(p.stdout) if s["suite"] == "gemm")
    impls = {i["impl"]: i for i in gemm["impls"]}
    assert impls["aibench"]["available"] and impls["blas"]["available"]
    assert not impls["cublas"]["available"] and impls["cublas"]["reason"]
    p = run_cli("info", "--json")
    assert p.returncode == 0
    info = json.loads(p.stdout)
    assert info["cpu"]["measured_clock_ghz"] > 0 and info["cpu"]["peak_tflops"]["fp64"]["value"] > 0
