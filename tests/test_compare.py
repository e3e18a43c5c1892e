"""`aibench compare`: shared cases, oriented ratios, noise-aware verdicts, the gate."""

import json
import math

import numpy as np
import pytest

from aibench.cli import main
from aibench.compare import headline_interval
from aibench.results import CaseResult, Metric, RunDocument, Samples, Validation, write_atomic
from aibench.stats import run_to_run_cv
from result_helpers import interval_stats


def _case(case_id, tflops, spread=0.01, impl="aibench"):
    t = 1.0 / tflops
    return CaseResult(suite="gemm", case_id=case_id, params={}, target="cpu", impl=impl, status="passed",
                      metrics={"tflops": Metric(tflops, "TFLOP/s", True), "time_us": Metric(t * 1e6, "us", False)},
                      stats=interval_stats(t, t * (1 - spread), t * (1 + spread)),
                      validation=Validation("passed", 0.0, 1.0))


def _write(tmp_path, name, cases, file=None):
    doc = RunDocument(command=["aibench"], machine=name, tier="quick", targets=["cpu"], system={},
                      aibench={"version": "0", "commit": None}, cases=cases)
    path = tmp_path / f"{file or name}.json"
    write_atomic(path, doc.to_dict())
    return str(path)


def test_ratios_verdicts_geomean_and_unshared_cases(tmp_path, capsys):
    a = _write(tmp_path, "node-a", [_case("x", 1.0), _case("y", 1.0), _case("z", 1.0), _case("only-a", 1.0)])
    b = _write(tmp_path, "node-b", [_case("x", 2.0), _case("y", 1.005), _case("z", 0.5), _case("only-b", 1.0)])
    assert main(["compare", a, b, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    rows = {r["case_id"]: r for r in out["rows"]}
    assert rows["x"]["ratios"] == [2.0] and rows["x"]["verdicts"] == ["better"]
    assert rows["y"]["verdicts"] == ["same"]  # 0.5% apart, inside the noise
    assert rows["z"]["ratios"] == [0.5] and rows["z"]["verdicts"] == ["worse"]
    assert abs(out["geomean"]["gemm"][0] - (2.0 * 1.005 * 0.5) ** (1 / 3)) < 1e-12
    assert {(o["machine"], o["case"][1]) for o in out["only_in_some"]} == {("node-a", "only-a"), ("node-b", "only-b")}


def test_fail_below_is_an_acceptance_gate(tmp_path):
    a = _write(tmp_path, "ref", [_case("x", 1.0)])
    b = _write(tmp_path, "new", [_case("x", 0.85)])
    assert main(["compare", a, b, "--fail-below", "0.9", "--markdown"]) == 1
    assert main(["compare", a, b, "--fail-below", "0.8", "--markdown"]) == 0


def test_usage_errors(tmp_path):
    a = _write(tmp_path, "a", [_case("x", 1.0)])
    assert main(["compare", a]) == 2
    assert main(["compare", a, str(tmp_path / "missing.json")]) == 2
    assert main(["compare", "--reference", "no-such-machine", a]) == 2


def test_compare_against_a_committed_reference(tmp_path, capsys):
    a = _write(tmp_path, "a", [_case("x", 1.0)])
    assert main(["compare", "--reference", "nvidia-h200", a, "--markdown"]) == 0
    assert "nvidia-h200" in capsys.readouterr().out


def _rows(capsys, *args):
    assert main(["compare", *args, "--json"]) == 0
    return {r["case_id"]: r for r in json.loads(capsys.readouterr().out)["rows"]}


def test_a_verdict_needs_apart_intervals_and_an_effect_over_the_minimum(tmp_path, capsys):
    """2% or 8% apart with tight intervals is no verdict under the 10% minimum effect, 12%
    is, and 2% is with --min-effect 0.01; 8% apart with overlapping intervals is none
    either way; without statistics the effect alone decides."""
    a = _write(tmp_path, "a", [_case("tight", 1.0, spread=0.002), _case("tight8", 1.0, spread=0.002),
                               _case("wide", 1.0, spread=0.2), _case("none4", 1.0), _case("none12", 1.0),
                               _case("tight12", 1.0, spread=0.002)])
    b = _write(tmp_path, "b", [_case("tight", 0.98, spread=0.002), _case("tight8", 0.92, spread=0.002),
                               _case("wide", 0.92, spread=0.2), _case("none4", 0.96), _case("none12", 0.88),
                               _case("tight12", 0.88, spread=0.002)])
    doc = json.loads(open(b).read())
    for c in doc["cases"][3:5]:
        c["stats"] = None  # no statistics: nothing to judge the samples' noise by
    write_atomic(tmp_path / "b.json", doc)
    rows = _rows(capsys, a, b)
    assert {k: r["verdicts"][0] for k, r in rows.items()} == {
        "tight": "same", "tight8": "same", "wide": "same", "none4": "same", "none12": "worse", "tight12": "worse"}
    assert rows["tight"]["effect_threshold"] == 0.10 and rows["tight"]["run_to_run_cv"] is None
    assert rows["none4"]["ratio_intervals"] == [[0.96, 0.96]]  # the ratio alone
    rows = _rows(capsys, a, b, "--min-effect", "0.01")
    assert {k: r["verdicts"][0] for k, r in rows.items()} == {
        "tight": "worse", "tight8": "worse", "wide": "same", "none4": "worse", "none12": "worse", "tight12": "worse"}
    assert rows["tight"]["effect_threshold"] == 0.01
    assert main(["compare", a, b, "--min-effect", "1.5"]) == 2
    assert main(["compare", a, b, "--min-effect", "-0.1"]) == 2
    assert "--min-effect" in capsys.readouterr().err


def test_ratio_and_its_interval_with_a_baseline_other_than_one(tmp_path, capsys):
    """The ratio is candidate / baseline, and its interval (candidate's low / baseline's
    high, candidate's high / baseline's low) from the two tflops intervals."""
    a = _write(tmp_path, "a", [_case("x", 4.0, spread=0.01)])
    b = _write(tmp_path, "b", [_case("x", 2.0, spread=0.02)])
    (row,) = _rows(capsys, a, b).values()
    assert row["values"] == [4.0, 2.0] and row["ratios"] == [0.5] and row["verdicts"] == ["worse"]
    # tflops = 1/t: its interval is (value * med / hi, value * med / lo) of the time's CI
    a_lo, a_hi = 4.0 / 1.01, 4.0 / 0.99
    b_lo, b_hi = 2.0 / 1.02, 2.0 / 0.98
    assert row["ratio_intervals"][0] == pytest.approx([b_lo / a_hi, b_hi / a_lo], rel=1e-12)


def test_headline_interval_of_a_lower_is_better_metric():
    """time_us (lower is better) scales with the time: (value * lo / med, value * hi / med);
    tflops (higher) inversely. An asymmetric CI tells every term apart."""
    t, lo, hi = 2.0, 1.9, 2.4
    c = CaseResult(suite="gemm", case_id="x", params={}, target="cpu", impl="aibench", status="passed",
                   metrics={"tflops": Metric(3.0, "TFLOP/s", True), "time_us": Metric(t * 1e6, "us", False)},
                   stats=interval_stats(t, lo, hi))
    assert headline_interval(c, "time_us") == pytest.approx((lo * 1e6, hi * 1e6), rel=1e-12)
    assert headline_interval(c) == pytest.approx((3.0 * t / hi, 3.0 * t / lo), rel=1e-12)
    assert headline_interval(c, "tflops") == headline_interval(c)
    c.metrics["lat_p99_us"] = Metric(5.0, "us", False)
    assert headline_interval(c, "lat_p99_us") is None  # a percentile has no interval here


def _noisy_run(tmp_path, name, seed, true_tflops, drift_sd=0.015, noise_sd=0.03, n=50):
    """A run document of len(true_tflops) gemm cases timed as the harness would: n samples
    per case with lognormal noise (noise_sd) around a time that the whole run is off by
    (drift_sd: the run-to-run part the samples of one run cannot see)."""
    rng = np.random.default_rng(seed)
    cases = []
    for i, tflops in enumerate(true_tflops):
        t = 1.0 / tflops * math.exp(rng.normal(0, drift_sd))
        samples = (t * np.exp(rng.normal(0, noise_sd, n))).tolist()
        median = float(np.median(samples))
        cases.append(CaseResult(suite="gemm", case_id=f"c{i}", params={}, target="cpu", impl="aibench",
                                status="passed", metrics={"tflops": Metric(1.0 / median, "TFLOP/s", True),
                                                          "time_us": Metric(median * 1e6, "us", False)},
                                stats=Samples(samples_s=samples), validation=Validation("passed", 0.0, 1.0)))
    return _write(tmp_path, name, cases)


def _intervals_apart(a_path, b_path) -> int:
    """How many shared cases the old rule (intervals apart: better/worse) called different."""
    a, b = RunDocument.load(a_path), RunDocument.load(b_path)
    apart = 0
    for x, y in zip(a.cases, b.cases):
        (xl, xh), (yl, yh) = headline_interval(x), headline_interval(y)
        apart += yl > xh or yh < xl
    return apart


def test_a_a_runs_are_the_same_and_a_real_20_percent_loss_is_worse(tmp_path, capsys):
    """Two runs of one machine (seeded noise: samples 3%, the run as a whole 1.5%): the
    intervals alone call many cases different; with the minimum effect at least 95% are
    `same`. A candidate 20% slower under the same noise is `worse` everywhere."""
    truth = [1.0 + 0.1 * i for i in range(40)]
    a = _noisy_run(tmp_path, "a", 1, truth)
    b = _noisy_run(tmp_path, "b", 2, truth)
    assert _intervals_apart(a, b) >= 8  # what the intervals-only rule called better/worse
    verdicts = [r["verdicts"][0] for r in _rows(capsys, a, b).values()]
    assert verdicts.count("same") >= 0.95 * len(truth)
    slow = _noisy_run(tmp_path, "slow", 3, [0.8 * x for x in truth])
    verdicts = [r["verdicts"][0] for r in _rows(capsys, a, slow).values()]
    assert verdicts == ["worse"] * len(truth)
    assert main(["compare", a, slow, "--fail-below", "0.9"]) == 1
    assert main(["compare", a, b, "--fail-below", "0.9"]) == 0


def test_run_to_run_noise_from_reruns_raises_the_threshold(tmp_path, capsys):
    """A case whose figure moves 4% between runs of the baseline's machine needs 3 x its
    CV (about 12%): a 10% loss with tight intervals is `same` with the reruns, `worse`
    without; a steady case keeps the 5% minimum."""
    base = _write(tmp_path, "base", [_case("jumpy", 1.0, spread=0.002), _case("steady", 1.0, spread=0.002)])
    reruns = [_write(tmp_path, "base", [_case("jumpy", x, spread=0.002), _case("steady", 1.0, spread=0.002)],
                     file=f"again{i}") for i, x in enumerate((1.04, 0.96))]
    cand = _write(tmp_path, "cand", [_case("jumpy", 0.9, spread=0.002), _case("steady", 0.9, spread=0.002)])
    rows = _rows(capsys, base, cand)
    assert rows["jumpy"]["verdicts"] == ["worse"] and rows["jumpy"]["run_to_run_cv"] is None
    rows = _rows(capsys, base, cand, "--rerun", reruns[0], "--rerun", reruns[1])
    cv = run_to_run_cv([1.0, 1.04, 0.96])
    assert rows["jumpy"]["run_to_run_cv"] == pytest.approx(cv) and cv == pytest.approx(1.4826 * math.log(1.04))
    assert rows["jumpy"]["effect_threshold"] == pytest.approx(3 * cv)
    assert rows["jumpy"]["verdicts"] == ["same"]
    assert rows["steady"]["run_to_run_cv"] == 0.0 and rows["steady"]["effect_threshold"] == 0.10
    assert rows["steady"]["verdicts"] == ["worse"]
    assert main(["compare", base, cand, "--rerun", str(tmp_path / "missing.json")]) == 2
    assert main(["compare", base, cand, "--rerun", base]) == 2  # no noise from a run with itself


def test_fail_below_gates_on_the_interval_and_says_inconclusive(tmp_path, capsys):
    """Fails only when the whole interval of the ratio is under the floor; an interval
    across it is reported inconclusive and does not fail."""
    a = _write(tmp_path, "ref", [_case("x", 1.0, spread=0.05)])
    across = _write(tmp_path, "across", [_case("x", 0.88, spread=0.05)])  # ratio (0.79, 0.97)
    under = _write(tmp_path, "under", [_case("x", 0.8, spread=0.02)])  # ratio (0.75, 0.86)
    over = _write(tmp_path, "over", [_case("x", 1.0, spread=0.02)])  # ratio (0.93, 1.07)
    assert main(["compare", a, across, "--fail-below", "0.9", "--markdown"]) == 0
    err = capsys.readouterr().err
    assert "1 shared case(s) inconclusive" in err and "under" not in err
    assert main(["compare", a, under, "--fail-below", "0.9", "--markdown"]) == 1
    assert "1 shared case(s) under 0.9x" in capsys.readouterr().err
    assert main(["compare", a, over, "--fail-below", "0.9", "--markdown"]) == 0
    assert capsys.readouterr().err == ""
    assert main(["compare", a, across, under, over, "--fail-below", "0.9", "--json"]) == 1
    gate = json.loads(capsys.readouterr().out)["gate"]
    assert gate["fail_below"] == 0.9
    assert [(g["machine"], g["outcome"]) for g in gate["not_passed"]] == [("across", "inconclusive"),
                                                                          ("under", "fail")]


def test_the_summary_colours_ratios_by_verdict(monkeypatch):
    """The run summary's own/peer ratio: green only for a real `better`, red only for a
    real `worse`; a ratio of 1.03 (was green) or 0.93 with overlapping intervals (was
    yellow/red) is neutral."""
    from aibench import report

    def pair(case_id, own, peer, spread):
        return [_case(case_id, own, spread=spread, impl="aibench"), _case(case_id, peer, spread=spread, impl="blas")]

    cases = [*pair("up", 1.5, 1.0, 0.01), *pair("down", 0.5, 1.0, 0.01), *pair("near", 1.03, 1.0, 0.002),
             *pair("noisy", 0.93, 1.0, 0.2)]
    rows = {r[1]: r for r in report.comparisons(cases)}
    assert {k: (r[3], r[5]) for k, r in rows.items()} == {
        "up": ("aibench/blas", "better"), "down": ("aibench/blas", "worse"), "near": ("aibench/blas", "same"),
        "noisy": ("aibench/blas", "same")}
    assert rows["up"][4] == pytest.approx(1.5)
    table = report.comparison_table(cases)
    cells = {c: str(v) for c, v in zip(table.columns[1].cells, table.columns[4].cells)}
    assert cells["up"].startswith("[green]") and cells["down"].startswith("[red]")
    assert "green" not in cells["near"] and "red" not in cells["near"] and "yellow" not in cells["near"]
    assert "green" not in cells["noisy"] and "red" not in cells["noisy"] and "yellow" not in cells["noisy"]


def test_the_gate_fails_closed_and_names_what_the_candidate_lost(tmp_path, capsys):
    """A baseline figure of 0 gives no ratio (fails); a baseline case the candidate failed,
    skipped, lacks or passed without a figure fails, each named with its status."""
    zero = _case("zero", 1.0)
    zero.metrics["tflops"] = Metric(0.0, "TFLOP/s", True)
    zero.stats = None
    a = _write(tmp_path, "a", [zero, *[_case(k, 1.0) for k in ("f", "s", "m", "w")]])
    failed, skipped, bare = _case("f", 1.0), _case("s", 1.0), _case("w", 1.0)
    failed.status, skipped.status, bare.metrics = "failed", "skipped", {}
    b = _write(tmp_path, "b", [_case("zero", 1.0), failed, skipped, bare])
    assert main(["compare", a, b, "--fail-below", "0.5", "--markdown"]) == 1
    err = capsys.readouterr().err
    assert "gemm zero cpu aibench no ratio (figures 0.0 and 1.0: a ratio needs finite positive figures) under 0.5" \
        in err
    for word in ("gemm f cpu aibench failed", "gemm s cpu aibench skipped", "gemm m cpu aibench missing",
                 "gemm w cpu aibench without a figure"):
        assert f"{word} (passed on the baseline)" in err
