"""benchmarks/gate.py, the per-benchmark regression gate, on synthetic saved runs laid out
as pytest-benchmark's --benchmark-autosave writes them (no benchmark is timed here)."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import pytest

GATE_PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "gate.py"
MACHINE = "Linux-CPython-3.11-64bit"


@pytest.fixture(scope="module")
def gate():
    spec = importlib.util.spec_from_file_location("bench_gate", GATE_PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _bench(name: str, median: float, iqr: float = 0.0, rounds: int = 100) -> dict:
    return {"group": None, "name": f"test_gemm[{name}]", "fullname": f"benchmarks/test_kernels.py::test_gemm[{name}]",
            "params": {}, "param": name, "extra_info": {}, "options": {},
            "stats": {"min": median * 0.9, "max": median * 1.2, "mean": median, "stddev": iqr / 1.349,
                      "rounds": rounds, "median": median, "iqr": iqr, "q1": median - iqr / 2,
                      "q3": median + iqr / 2, "iqr_outliers": 0, "stddev_outliers": 0, "outliers": "0;0",
                      "ld15iqr": median, "hd15iqr": median, "ops": 1 / median, "total": median * rounds}}


def write_run(storage: Path, number: int, benchmarks: list[dict], machine: str = MACHINE) -> Path:
    directory = storage / machine
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{number:04d}_0123abcd_20250101_1200{number:02d}.json"
    path.write_text(json.dumps({"machine_info": {"node": "n"}, "commit_info": {"id": "0123abcd"},
                                "benchmarks": benchmarks, "datetime": "2025-01-01T12:00:00+00:00",
                                "version": "5.1.0"}))
    return path


def spread(noise: float) -> list[float]:
    """Five medians around 1 ms whose log spread is `noise` by the gate's measure
    (1.4826 x the median absolute deviation)."""
    a = noise / 1.4826
    return [1e-3 * math.exp(x) for x in (0.0, a, -a, 2 * a, -2 * a)]


def history_with(storage: Path, series: dict[str, list[float]], iqr_frac: float = 0.01) -> int:
    """One saved run per index of the series (all of equal length); returns the next number."""
    n = len(next(iter(series.values())))
    for i in range(n):
        write_run(storage, i + 1, [_bench(name, m[i], iqr=iqr_frac * m[i]) for name, m in series.items()])
    return n + 1


def run_gate(gate, capsys, *args) -> tuple[int, str, str]:
    code = gate.main([*map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


def verdicts(out: str) -> dict[str, str]:
    rows = {}
    for line in out.splitlines():
        if line.startswith("test_"):
            rows[line.split()[0]] = line.split()[-1]
    return rows


def test_threshold_follows_each_benchmarks_measured_noise(gate, tmp_path, capsys):
    storage = tmp_path / ".benchmarks"
    nxt = history_with(storage, {"noisy": spread(0.05), "quiet": spread(0.005)})
    # Both 8% slower than their baselines (the history's median, 1 ms).
    write_run(storage, nxt, [_bench("noisy", 1.08e-3, iqr=1e-5), _bench("quiet", 1.08e-3, iqr=1e-5)])
    code, out, _ = run_gate(gate, capsys, "--storage", storage, "--k", 3, "--floor", 0.02)
    v = verdicts(out)
    assert v["test_gemm[noisy]"] == "ok"  # noise 5%: threshold 15%
    assert v["test_gemm[quiet]"] == "REGRESSED"  # noise 0.5%: threshold max(2%, 1.5%)
    assert code == 1
    noisy = next(line for line in out.splitlines() if line.startswith("test_gemm[noisy]"))
    assert "+8.0%" in noisy and "5.0% (5 runs)" in noisy and "15.0%" in noisy


def test_noise_is_measured_from_the_history(gate):
    runs = [{"median": m, "iqr": 1e-6, "stddev": 1e-6, "rounds": 100} for m in spread(0.05)]
    assert gate.noise(runs) == (pytest.approx(0.05), "5 runs")
    # One earlier run: its spread between rounds, IQR / 1.349 / median.
    one = [{"median": 2e-3, "iqr": 2e-3 * 0.04 * 1.349, "stddev": 0.0, "rounds": 50}]
    assert gate.noise(one) == (pytest.approx(0.04), "within-run")
    # Two runs that agree by chance: not below the standard error their own spread implies.
    twins = [{"median": 1e-3, "iqr": 1e-3 * 0.3 * 1.349, "stddev": 0.0, "rounds": 25}] * 2
    assert gate.noise(twins)[0] == pytest.approx(1.2533 * 0.3 / 5)


def test_one_earlier_run_uses_its_within_run_spread(gate, tmp_path, capsys):
    storage = tmp_path / ".benchmarks"
    write_run(storage, 1, [_bench("wide", 1e-3, iqr=1e-3 * 0.04 * 1.349), _bench("tight", 1e-3, iqr=1e-6)])
    write_run(storage, 2, [_bench("wide", 1.08e-3), _bench("tight", 1.08e-3)])
    code, out, _ = run_gate(gate, capsys, "--storage", storage)
    v = verdicts(out)
    assert v == {"test_gemm[wide]": "ok", "test_gemm[tight]": "REGRESSED"}  # thresholds 12% and 2%
    assert "(within-run)" in out and code == 1


def test_new_and_missing_benchmarks_are_listed_not_failed(gate, tmp_path, capsys):
    storage = tmp_path / ".benchmarks"
    nxt = history_with(storage, {"kept": spread(0.01), "dropped": spread(0.01)})
    write_run(storage, nxt, [_bench("kept", 0.99e-3), _bench("added", 5e-3)])
    code, out, _ = run_gate(gate, capsys, "--storage", storage)
    assert verdicts(out) == {"test_gemm[kept]": "ok", "test_gemm[added]": "new", "test_gemm[dropped]": "missing"}
    assert code == 0


def test_a_speedup_is_not_a_failure(gate, tmp_path, capsys):
    storage = tmp_path / ".benchmarks"
    nxt = history_with(storage, {"g": spread(0.005)})
    write_run(storage, nxt, [_bench("g", 0.5e-3)])
    code, out, _ = run_gate(gate, capsys, "--storage", storage)
    assert verdicts(out) == {"test_gemm[g]": "faster"} and code == 0


def test_history_is_the_n_runs_before_new(gate, tmp_path, capsys):
    storage = tmp_path / ".benchmarks"
    write_run(storage, 1, [_bench("g", 3e-3)])  # an old, slower commit: outside --history 3
    for i, m in enumerate([1.00e-3, 1.01e-3, 0.99e-3], start=2):
        write_run(storage, i, [_bench("g", m, iqr=1e-6)])
    write_run(storage, 5, [_bench("g", 1.5e-3)])
    code, out, _ = run_gate(gate, capsys, "--storage", storage, "--history", 3)
    assert "3 run(s), 0002_" in out and "+50.0%" in out and code == 1
    # The newest run is NEW by default; an explicit saved run is judged against those before it.
    fourth = storage / MACHINE / "0004_0123abcd_20250101_120004.json"
    code, out, _ = run_gate(gate, capsys, "--storage", storage, fourth)
    assert "3 run(s), 0001_" in out and code == 0


def test_new_file_outside_storage_is_judged_against_every_saved_run(gate, tmp_path, capsys):
    storage = tmp_path / ".benchmarks"
    nxt = history_with(storage, {"g": spread(0.005)})
    candidate = write_run(tmp_path / "elsewhere", nxt, [_bench("g", 1.2e-3)])  # e.g. --benchmark-json
    code, out, _ = run_gate(gate, capsys, "--storage", storage, candidate)
    assert "5 run(s)" in out and verdicts(out) == {"test_gemm[g]": "REGRESSED"} and code == 1


def test_bad_input_exits_2_with_one_line(gate, tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    code, out, err = run_gate(gate, capsys, "--storage", empty)
    assert code == 2 and "no saved runs" in err and len(err.strip().splitlines()) == 1 and out == ""
    code, _, err = run_gate(gate, capsys, "--storage", tmp_path / "absent")
    assert code == 2 and "no saved runs" in err

    storage = tmp_path / ".benchmarks"
    write_run(storage, 1, [_bench("g", 1e-3)])
    code, _, err = run_gate(gate, capsys, "--storage", storage)
    assert code == 2 and "no saved run before" in err  # one run: nothing to measure noise from

    (storage / MACHINE / "0002_broken_20250101_120002.json").write_text("{not json")
    code, _, err = run_gate(gate, capsys, "--storage", storage)
    assert code == 2 and "cannot read saved run" in err and len(err.strip().splitlines()) == 1
