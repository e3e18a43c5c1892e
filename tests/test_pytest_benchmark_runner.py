"""aibench.pytest_benchmark: a user's pytest-benchmark file run through pytest, each
benchmark one case (outcomes from junitxml, figures from --benchmark-json)."""

import textwrap
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pytest_benchmark")

from aibench.errors import UsageError  # noqa: E402
from aibench.pytest_benchmark import (  # noqa: E402
    MAX_STORED_ROUNDS,
    _add_measurement,
    pytest_benchmark_unavailable,
    run_benchmarks,
    suite_name_for,
)
from aibench.results import FAILED, PASSED, SKIPPED, CaseResult, Samples  # noqa: E402
from aibench.stats import summarize  # noqa: E402

BENCHMARKS = """
import os

import pytest


@pytest.mark.parametrize("n", [16, 64])
def test_copy(benchmark, n):
    benchmark.extra_info["label"] = "bytes"
    benchmark.extra_info["shape"] = [n]  # not a JSON scalar: left out of params
    benchmark.extra_info["copies_per_s"] = 1000.0
    benchmark.extra_info["seed"] = int(os.environ["AIBENCH_SEED"])
    out = benchmark(bytes, n)
    assert len(out) == n


def test_wrong_sum(benchmark):
    total = benchmark(sum, [1, 2])
    assert total == 4, "sum came out wrong"


def test_needs_gpu(benchmark):
    pytest.skip("no GPU here")


def test_plain():
    assert True
"""


def write(path, text):
    path.write_text(textwrap.dedent(text))
    return path


@pytest.fixture(scope="module")
def cases(tmp_path_factory):
    path = write(tmp_path_factory.mktemp("bench") / "test_loader.py", BENCHMARKS)
    got = run_benchmarks(path, suite=suite_name_for(path), budget_s=0.05, seed=7)
    return {c.case_id: c for c in got}


def test_available():
    assert pytest_benchmark_unavailable() is None


def test_suite_name_has_no_directories(tmp_path):
    path = write(tmp_path / "test_loader.py", BENCHMARKS)
    assert suite_name_for(path) == "pytest:test_loader"
    assert suite_name_for(tmp_path) == f"pytest:{tmp_path.name}"


def test_every_benchmark_is_a_case_and_plain_tests_are_not(cases):
    assert set(cases) == {"test_copy[16]", "test_copy[64]", "test_wrong_sum", "test_needs_gpu"}
    assert all(c.suite == "pytest:test_loader" and c.impl == "pytest-benchmark" and c.target == "cpu"
               for c in cases.values())


def test_passing_benchmark_has_its_figures_and_samples(cases):
    case = cases["test_copy[16]"]
    assert case.status == PASSED and case.error is None
    assert case.validation.status == PASSED
    assert list(case.metrics)[:2] == ["ops_per_s", "time_us"]
    assert case.headline()[0] == "ops_per_s"
    assert case.metrics["time_us"].unit == "us" and not case.metrics["time_us"].higher_is_better
    assert case.metrics["ops_per_s"].value == pytest.approx(1e6 / case.metrics["time_us"].value)
    assert case.metrics["copies_per_s"].value == 1000.0 and case.metrics["copies_per_s"].higher_is_better
    stats = case.stats.to_dict()
    assert stats["n"] == stats["rounds_taken"] >= 5
    assert len(stats["samples_s"]) == stats["rounds_stored"] == min(stats["n"], MAX_STORED_ROUNDS)
    assert stats["median"] * 1e6 == pytest.approx(case.metrics["time_us"].value)
    assert stats["number"] >= 1
    assert case.impl_detail["file"] == "test_loader.py" and case.impl_detail["pytest_benchmark"]
    assert case.duration_s > 0


def _measured(rounds: list[float]) -> CaseResult:
    case = CaseResult(suite="s", case_id="c", params={}, target="cpu", impl="pytest-benchmark", status=PASSED)
    _add_measurement(case, {"stats": {"data": rounds, "iterations": 4, "total": sum(rounds)},
                            "options": {"warmup": False, "timer": "perf_counter"}})
    return case


def test_many_rounds_keep_all_their_statistics_and_a_bounded_evenly_spaced_sample():
    # 3751 rounds (as one fast benchmark took) that drift from 1 us to 2 us over the run.
    rounds = list(np.linspace(1e-6, 2e-6, 3751) + np.random.default_rng(1).normal(0, 1e-8, 3751))
    case = _measured(rounds)
    stored = case.stats.to_dict()
    assert stored["rounds_taken"] == stored["n"] == 3751
    assert stored["rounds_stored"] == len(stored["samples_s"]) == MAX_STORED_ROUNDS
    # The interval and every statistic are of all the rounds, not of the kept ones.
    whole = summarize(rounds)
    assert case.stats.summary == whole and whole != summarize(stored["samples_s"])
    assert case.metrics["time_us"].value == whole.median * 1e6
    # Kept in the order taken, first and last included, spanning the run's drift.
    assert stored["samples_s"][0] == rounds[0] and stored["samples_s"][-1] == rounds[-1]
    positions = [rounds.index(x) for x in stored["samples_s"]]
    assert positions == sorted(positions) and max(np.diff(positions)) - min(np.diff(positions)) <= 1
    # What a later command reads back is the same summary and the same counts.
    again = Samples.from_dict(stored)
    assert again.summary == whole and again.extra == {"rounds_taken": 3751, "rounds_stored": MAX_STORED_ROUNDS}


def test_few_rounds_are_all_kept():
    rounds = [1e-6, 3e-6, 2e-6, 2e-6, 5e-6]
    stats = _measured(rounds).stats
    assert stats.samples_s == rounds and stats.extra == {"rounds_taken": 5, "rounds_stored": 5}
    assert stats.summary == summarize(rounds)


def test_params_hold_the_test_its_parameters_and_scalar_extra_info(cases):
    params = cases["test_copy[64]"].params
    assert params["test"] == "test_loader.py::test_copy[64]"
    assert params["n"] == 64
    assert params["label"] == "bytes"
    assert params["seed"] == 7  # AIBENCH_SEED reached the benchmark
    assert "shape" not in params and "copies_per_s" not in params


def test_failed_assertion_is_a_failed_case_without_figures(cases):
    case = cases["test_wrong_sum"]
    assert case.status == FAILED and case.validation.status == FAILED
    assert "sum came out wrong" in case.error and "\n" not in case.error
    assert case.metrics == {} and case.stats is None


def test_skipped_benchmark_keeps_its_reason(cases):
    case = cases["test_needs_gpu"]
    assert case.status == SKIPPED
    assert case.validation.reason == "no GPU here"
    assert case.metrics == {}


def test_same_test_name_in_two_files_is_told_apart_by_file(tmp_path):
    (tmp_path / "sub").mkdir()
    write(tmp_path / "test_one.py", "def test_sum(benchmark):\n    benchmark(sum, [1])\n")
    write(tmp_path / "sub" / "test_two.py", "class TestK:\n    def test_sum(self, benchmark):\n"
                                            "        benchmark(sum, [2])\n")
    got = run_benchmarks(tmp_path, suite="s", budget_s=0.01)
    assert sorted(c.case_id for c in got) == ["sub/test_two.py::TestK::test_sum", "test_one.py::test_sum"]
    assert all(c.status == PASSED for c in got)


def test_missing_path_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="no such file"):
        run_benchmarks(tmp_path / "nope.py", suite="s", budget_s=0.01)


def test_not_python_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="neither a .py file"):
        run_benchmarks(write(tmp_path / "notes.txt", "x"), suite="s", budget_s=0.01)


def test_file_without_benchmarks_is_a_usage_error(tmp_path):
    path = write(tmp_path / "test_plain.py", "def test_x():\n    assert True\n")
    with pytest.raises(UsageError, match="no pytest-benchmark benchmarks in"):
        run_benchmarks(path, suite="s", budget_s=0.01)


def test_collection_error_is_one_line(tmp_path):
    path = write(tmp_path / "test_broken.py", "import no_such_module_here\n")
    with pytest.raises(UsageError) as err:
        run_benchmarks(path, suite="s", budget_s=0.01)
    assert "no_such_module_here" in str(err.value) and "\n" not in str(err.value)


def test_timeout_keeps_finished_benchmarks(tmp_path):
    path = write(tmp_path / "test_slow.py", """
        import time

        def test_fast(benchmark):
            benchmark(sum, [1])

        def test_slow(benchmark):
            benchmark.pedantic(time.sleep, args=(600,), rounds=1)
    """)
    # 30 s: pytest's start (imports, plugins) took more than 5 s in CI on a loaded machine,
    # so the fast benchmark had not run when the timeout fired.
    cases = run_benchmarks(path, suite="s", budget_s=0.01, timeout_s=30)
    got = {c.case_id.split("::")[-1]: c for c in cases}
    assert "test_fast" in got, [(c.case_id, c.status, c.error) for c in cases]
    assert got["test_fast"].status == PASSED and got["test_fast"].metrics
    assert got["test_slow"].status == FAILED and "timed out" in got["test_slow"].error
    assert not got["test_slow"].metrics


HANGS = """
import os
import pathlib
import time


def test_hangs(benchmark):
    pathlib.Path(os.environ["AIBENCH_TEST_MARKER"]).write_text(str(os.getpid()))
    time.sleep(300)
    benchmark(sum, [1])
"""


def _gone(pid: int) -> bool:
    try:
        return open(f"/proc/{pid}/stat").read().split()[2] == "Z"
    except OSError:
        return True


def test_sigkill_of_aibench_ends_the_pytest_child_which_removes_its_directory(tmp_path):
    """#27 fault 11: the child runs in a session of its own, so without a parent-death
    signal a SIGKILL of aibench left pytest running, and its /tmp/aibench-pytest-* behind."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from aibench.leftovers import OWNER_FILE

    bench, scratch, marker = tmp_path / "bench", tmp_path / "tmp", tmp_path / "pytest.pid"
    bench.mkdir()
    scratch.mkdir()
    path = write(bench / "test_hangs.py", HANGS)
    env = {**os.environ, "TMPDIR": str(scratch), "AIBENCH_TEST_MARKER": str(marker)}
    aibench = subprocess.Popen([sys.executable, "-m", "aibench.cli", "run", "--pytest-benchmark", str(path),
                                "--no-asv", "--output", str(tmp_path / "run.json")], env=env, cwd=tmp_path,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not marker.exists() and aibench.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert marker.exists(), "pytest never started the benchmark"
    child = int(marker.read_text())
    reports = [d for d in scratch.iterdir() if d.name.startswith("aibench-pytest-")]
    assert [(d / OWNER_FILE).read_text().split()[0] for d in reports] == [str(aibench.pid)]
    aibench.send_signal(signal.SIGKILL)
    aibench.wait()
    deadline = time.monotonic() + 30
    while not _gone(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    orphaned = not _gone(child)
    if orphaned:
        os.kill(child, signal.SIGKILL)  # not left running by a failed test
    assert not orphaned, "the pytest child outlived aibench's SIGKILL"
    assert not list(scratch.iterdir()), "the reports' directory was left"


def test_the_next_run_removes_a_reports_directory_a_killed_run_left(tmp_path, monkeypatch):
    """When the child died with aibench before removing it (SIGKILL of both)."""
    import subprocess
    import tempfile

    from aibench.leftovers import OWNER_FILE, boot_id, owned_temp_dir

    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = Path(owned_temp_dir("aibench-pytest-", str(tmp_path)))
    (stale / OWNER_FILE).write_text(f"{dead.pid} {boot_id()}\n")
    (stale / "junit.xml").write_text("<")
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # the next run, with the same TMPDIR
    bench = tmp_path / "bench"
    bench.mkdir()
    quick = write(bench / "test_quick.py", "def test_quick(benchmark):\n    benchmark(sum, [1])\n")
    assert [c.status for c in run_benchmarks(quick, suite="s", budget_s=0.01)] == [PASSED]
    assert not stale.exists() and [d.name for d in tmp_path.iterdir()] == ["bench"]
