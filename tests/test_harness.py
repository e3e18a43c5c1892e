"""The sampling loop's bounds on slow calls (harness.measure), with timers that report
times instead of spending them: no test here waits."""

import json

import pytest

from aibench.harness import CallTooSlow, SamplingPolicy, measure


class ReportedTimer:
    """timer(number) -> number * per_call seconds, without spending them; counts calls."""

    def __init__(self, per_call: float):
        self.per_call = per_call
        self.calls = 0

    def __call__(self, number: int) -> float:
        self.calls += number
        return number * self.per_call


def test_a_call_over_the_cap_stops_the_impl_after_one_call():
    timer = ReportedTimer(61.0)
    with pytest.raises(CallTooSlow, match=r"one call took 61\.0 s, over the 30 s cap"):
        measure(timer, SamplingPolicy(budget_s=3.0, settle_s=0))
    assert timer.calls == 1


def test_a_call_longer_than_the_budget_gets_three_low_confidence_samples():
    timer = ReportedTimer(4.0)
    m = measure(timer, SamplingPolicy(budget_s=3.0, settle_s=0))
    assert m.stopped_by == "slow_call" and m.number == 1 and m.samples_s == [4.0, 4.0, 4.0]
    assert timer.calls == 3  # no warm-up beyond the first call, which is the first sample
    assert m.to_dict()["low_confidence"] is True


def test_a_fast_call_is_sampled_as_before():
    m = measure(ReportedTimer(0.5), SamplingPolicy(budget_s=3.0, settle_s=0, warmup_s=0))
    assert m.stopped_by == "ci" and len(m.samples_s) == 5 and m.to_dict()["low_confidence"] is False


def test_max_call_s_reaches_the_cases(tmp_path, monkeypatch):
    from aibench.cli import main
    from aibench.suites.gemm import cpu

    monkeypatch.setattr(cpu.BlasRunner, "time", lambda self, number: number * 2.5)  # a slow peer
    out = tmp_path / "run.json"
    code = main(["run", "--param", "m=16", "--param", "n=16", "--param", "k=16", "--param", "dtype=fp32",
                 "--impl", "aibench", "--impl", "blas", "--max-call-s", "2", "--output", str(out), "--time-budget", "0.05",
                 "--no-asv"])
    assert code == 0
    by_impl = {c["impl"]: c for c in json.loads(out.read_text())["cases"]}
    assert by_impl["aibench"]["status"] == "passed"
    assert by_impl["blas"]["status"] == "skipped"
    assert "one call took 2.5 s, over the 2 s cap per call (--max-call-s)" in by_impl["blas"]["validation"]["reason"]


@pytest.mark.parametrize("value", ["0", "-1", "nan", "1e9"])
def test_max_call_s_must_be_a_sane_number(value, capsys):
    from aibench.cli import main

    assert main(["run", "--max-call-s", value, "--no-asv"]) == 2
    assert "--max-call-s" in capsys.readouterr().err


def test_an_impl_estimated_over_the_cap_is_not_started(tmp_path, monkeypatch):
    from aibench.cli import main
    from aibench.suites.gemm import cpu

    def never(self, number):
        raise AssertionError("the full call must not start")

    monkeypatch.setattr(cpu.BlasRunner, "estimated_call_s", lambda self: 100.0)
    monkeypatch.setattr(cpu.BlasRunner, "time", never)
    out = tmp_path / "run.json"
    code = main(["run", "--param", "m=16", "--param", "n=16", "--param", "k=16", "--param", "dtype=fp32",
                 "--impl", "aibench", "--impl", "blas", "--output", str(out), "--time-budget", "0.05", "--no-asv"])
    assert code == 0
    by_impl = {c["impl"]: c for c in json.loads(out.read_text())["cases"]}
    assert by_impl["blas"]["status"] == "skipped"
    assert "would take about 100 s" in by_impl["blas"]["validation"]["reason"]


def test_torch_probe_scales_by_the_work():
    pytest.importorskip("torch")
    from aibench.harness import SamplingPolicy
    from aibench.suites.base import RunContext
    from aibench.suites.gemm import cpu
    from aibench.targets import parse_target

    ctx = RunContext(target=parse_target("cpu"), policy=SamplingPolicy())
    small = cpu.TorchCpuRunner({"m": 64, "n": 64, "k": 64, "dtype": "fp32"}, ctx)
    assert small.estimated_call_s() is None  # no bigger than the probe: nothing to estimate
    big = cpu.TorchCpuRunner({"m": 1024, "n": 512, "k": 512, "dtype": "fp32"}, ctx)
    assert 0 < big.estimated_call_s() < 30  # a fast path here: the case runs
