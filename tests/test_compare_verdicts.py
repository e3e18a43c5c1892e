"""compare.py's verdicts, intervals, ratios and gate, in memory (no document written, no
run launched): fast enough to run against every mutant of the module
(scripts/mutation/targets.toml). tests/test_compare.py covers the same through the CLI."""

from __future__ import annotations

import math

import pytest

from aibench.compare import (case_window_spread, compare, gate_outcomes, gateable, headline_interval, judge,
                             not_in_baseline, not_passed_by_candidates, rerun_cvs, same_machine, windows_cv)
from aibench.results import CaseResult, Metric, RunDocument, Samples
from aibench.stats import ratio_interval, run_to_run_cv
from result_helpers import interval_stats

LN2 = math.log(2.0)


def _case(case_id="x", value=1.0, spread=0.01, suite="gemm", target="cpu", impl="aibench", status="passed",
          stats="interval", telemetry=None):
    """A case whose headline is `value` TFLOP/s, timed at 1/value s with a time interval of
    +-spread; stats=None: no statistics, or a Samples to use."""
    t = 1.0 / value if value and math.isfinite(value) and value > 0 else 1.0
    return CaseResult(suite=suite, case_id=case_id, params={}, target=target, impl=impl, status=status,
                      metrics={"tflops": Metric(value, "TFLOP/s", True), "time_us": Metric(t * 1e6, "us", False)},
                      stats=interval_stats(t, t * (1 - spread), t * (1 + spread)) if stats == "interval" else stats,
                      telemetry=telemetry)


def _run(cases, machine="a", system=None):
    return RunDocument(command=["aibench"], machine=machine, tier="quick", targets=["cpu"],
                       system=system if system is not None else {}, aibench={"version": "0", "commit": None},
                       cases=cases)


def _windowed(samples, window=None):
    """Samples taken in windows of `window` (None: one at a time, no interleave record)."""
    taken = Samples(samples_s=list(samples))
    if window is not None:  # set after the summary: a document may hold a window summarize refuses
        taken.extra["interleave"] = {"window_samples": window}
    return taken


# ---- headline_interval: a figure's 95% interval from the median time's -------------------


def _asymmetric():
    """tflops 3.0 (higher is better) and time_us 2e6 (lower), timed at a median 2.0 s with
    an asymmetric CI 1.9..2.4 s: every term of the interval formulas differs."""
    return CaseResult(suite="gemm", case_id="x", params={}, target="cpu", impl="aibench", status="passed",
                      metrics={"tflops": Metric(3.0, "TFLOP/s", True), "time_us": Metric(2e6, "us", False)},
                      stats=interval_stats(2.0, 1.9, 2.4))


def test_a_throughput_interval_is_inverse_to_the_time_interval():
    assert headline_interval(_asymmetric()) == pytest.approx((3.0 * 2.0 / 2.4, 3.0 * 2.0 / 1.9), rel=1e-12)
    assert headline_interval(_asymmetric(), "tflops") == pytest.approx((2.5, 3.0 * 2.0 / 1.9), rel=1e-12)


def test_a_time_interval_scales_with_the_time_interval():
    assert headline_interval(_asymmetric(), "time_us") == pytest.approx((1.9e6, 2.4e6), rel=1e-12)


def test_no_interval_without_statistics_or_for_another_metric():
    c = _asymmetric()
    c.metrics["lat_p99_us"] = Metric(5.0, "us", False)
    assert headline_interval(c, "lat_p99_us") is None  # a percentile is not ~ the median time
    assert headline_interval(c, "busbw") is None  # a metric the case lacks
    no_time = _asymmetric()
    del no_time.metrics["time_us"]
    assert headline_interval(no_time, "time_us") is None
    bare = _asymmetric()
    bare.stats = None
    assert headline_interval(bare) is None and headline_interval(bare, "time_us") is None
    zero = _asymmetric()
    zero.stats = interval_stats(2.0, 0.0, 2.4)  # a CI bound of 0: no interval, not a division by 0
    assert headline_interval(zero) is None
    headless = _asymmetric()
    del headless.metrics["tflops"]  # only a lower-is-better metric: no headline
    assert headline_interval(headless) is None and headline_interval(headless, "time_us") is None


# ---- judge: ratio, its interval, the verdict ---------------------------------------------


def test_the_ratio_is_candidate_over_baseline_with_the_two_intervals_interval():
    base, cand = _case(value=4.0, spread=0.01), _case(value=2.0, spread=0.02)
    ratio, interval, verdict = judge(base, cand, 0.1)
    assert ratio == 0.5 and verdict == "worse"
    assert interval == pytest.approx(((2.0 / 1.02) / (4.0 / 0.99), (2.0 / 0.98) / (4.0 / 1.01)), rel=1e-12)
    ratio, interval, verdict = judge(cand, base, 0.1)
    assert ratio == 2.0 and verdict == "better" and interval[0] > 1.0


def test_figures_under_one_give_their_ratio():
    """Figures between 0 and 1 (a slow CPU's TFLOP/s) are finite positive figures."""
    assert judge(_case(value=0.5), _case(value=0.25), 0.1)[0] == 0.5
    assert judge(_case(value=0.25), _case(value=0.5), 0.1)[0] == 2.0


def test_without_the_statistics_of_either_side_the_interval_is_the_ratio_alone():
    with_stats, bare = _case(value=1.0), _case(value=0.8, stats=None)
    assert judge(with_stats, bare, 0.1) == (0.8, (0.8, 0.8), "worse")
    assert judge(bare, with_stats, 0.1) == (1.25, (1.25, 1.25), "better")
    ratio = pytest.approx(0.95 / 0.8)
    assert judge(bare, _case(value=0.95, stats=None), 0.1) == (ratio, (ratio, ratio), "better")


@pytest.mark.parametrize("base, cand", [(0.0, 1.0), (1.0, 0.0), (-1.0, 1.0), (1.0, -1.0), (math.inf, 1.0),
                                        (1.0, math.inf), (math.nan, 1.0), (1.0, math.nan)])
def test_a_figure_that_is_not_finite_positive_gives_no_ratio(base, cand):
    ratio, interval, verdict = judge(_case(value=base, stats=None), _case(value=cand, stats=None), 0.1)
    assert math.isnan(ratio) and all(math.isnan(x) for x in interval) and verdict == "same"


def test_overlapping_intervals_or_a_small_effect_are_the_same():
    assert judge(_case(value=1.0, spread=0.2), _case(value=0.85, spread=0.2), 0.1)[2] == "same"
    assert judge(_case(value=1.0, spread=0.001), _case(value=0.95, spread=0.001), 0.1)[2] == "same"
    assert judge(_case(value=1.0, spread=0.001), _case(value=0.95, spread=0.001), 0.01)[2] == "worse"


# ---- run-to-run noise: reruns of the baseline, else the runs' own windows ----------------


def test_rerun_cvs_spread_of_the_baseline_and_its_reruns_only():
    base = _run([_case("x", 1.0), _case("y", 1.0), _case("solo", 1.0)])
    cand = _run([_case("x", 2.0), _case("y", 2.0)], machine="b")  # never part of the noise
    failed = _case("y", 5.0, status="failed")  # a failed case's figure is no run of it
    headless = _case("x", 1.0)
    del headless.metrics["tflops"]
    reruns = [_run([_case("x", 1.04), _case("y", 1.1)]), _run([_case("x", 0.96), failed]), _run([headless])]
    cvs = rerun_cvs([base, cand], reruns)
    assert set(cvs) == {("gemm", "x", "cpu", "aibench"), ("gemm", "y", "cpu", "aibench")}  # solo: one figure
    assert cvs[("gemm", "x", "cpu", "aibench")] == pytest.approx(1.4826 * math.log(1.04), rel=1e-9)
    assert cvs[("gemm", "y", "cpu", "aibench")] == pytest.approx(math.log(1.1) / math.sqrt(2), rel=1e-12)


def test_without_reruns_no_noise_comes_from_reruns():
    """Even a baseline that lists a case twice: the spread within one run is not a rerun's."""
    base = _run([_case("x", 1.0), _case("x", 1.3)])
    assert rerun_cvs([base, _run([_case("x", 1.0)])], []) == {}


def test_a_case_window_spread_takes_its_samples_by_their_window():
    """Samples alternating 1 s, 2 s: taken one at a time they spread by 1.4826 x ln2/2;
    in windows of two every window's median is 1.5 s, no spread."""
    alternating = [1.0, 2.0] * 6
    one_by_one = 1.4826 * LN2 / 2
    assert case_window_spread(_case(stats=_windowed(alternating))) == pytest.approx(one_by_one, rel=1e-12)
    assert case_window_spread(_case(stats=_windowed(alternating, window=2))) == 0.0
    assert case_window_spread(_case(stats=_windowed(alternating, window=1))) == pytest.approx(one_by_one, rel=1e-12)
    # A window a document gives that is not a positive whole number counts as one sample.
    for odd in (2.5, "2", 0, -2, None):
        assert case_window_spread(_case(stats=_windowed(alternating, window=odd))) == pytest.approx(one_by_one), odd
    stats = _windowed(alternating)
    stats.extra["interleave"] = {}  # a record without the window: one at a time
    assert case_window_spread(_case(stats=stats)) == pytest.approx(one_by_one, rel=1e-12)


def test_no_window_spread_without_samples():
    assert case_window_spread(_case(stats=None)) is None
    assert case_window_spread(_case()) is None  # a summary without the samples
    assert case_window_spread(_case(stats=_windowed([1.0, 2.0]))) is None  # under 3 windows


def test_windows_cv_is_the_root_mean_square_of_the_runs_spreads():
    a = _case(stats=_windowed([1.0, 2.0] * 3))  # 1.4826 ln2 / 2
    b = _case(stats=_windowed([1.0, 4.0] * 3))  # twice that
    s = 1.4826 * LN2 / 2
    assert windows_cv([a, b]) == pytest.approx(math.sqrt((s * s + 4 * s * s) / 2), rel=1e-12)
    assert windows_cv([a, a, b]) == pytest.approx(math.sqrt((2 * s * s + 4 * s * s) / 3), rel=1e-12)
    assert windows_cv([a, _case(stats=None)]) is None
    assert windows_cv([_case(stats=None), a]) is None


# ---- compare: the rows, the geometric means, the unshared cases --------------------------


def _three_runs():
    base = _run([_case("x", 1.0, target="cuda:0", impl="cublas", spread=0.001),
                 _case("y", 2.0, spread=0.001), _case("z", 3.0, suite="attention", spread=0.001),
                 _case("only-base", 1.0), _case("broken", 1.0, status="failed")], machine="base")
    c1 = _run([_case("x", 1.5, target="cuda:3", impl="cublas", spread=0.001), _case("y", 1.0, spread=0.001),
               _case("z", 3.3, suite="attention", spread=0.001), _case("only-c1", 1.0),
               _case("broken", 1.0, status="failed")], machine="c1")
    c2 = _run([_case("x", 0.5, target="cuda:1", impl="cublas", spread=0.001), _case("y", 2.0, spread=0.001),
               _case("z", 1.5, suite="attention", spread=0.001)], machine="c2")
    return base, c1, c2


def test_compare_rows_hold_each_runs_figure_ratio_interval_and_verdict():
    base, c1, c2 = _three_runs()
    rows, geo, only = compare([base, c1, c2])
    assert [(r.suite, r.case_id, r.target, r.impl) for r in rows] == [
        ("gemm", "x", "cuda", "cublas"), ("gemm", "y", "cpu", "aibench"), ("attention", "z", "cpu", "aibench")]
    x = rows[0]
    assert (x.metric, x.unit, x.values, x.ratios) == ("tflops", "TFLOP/s", [1.0, 1.5, 0.5], [1.5, 0.5])
    assert x.verdicts == ["better", "worse"]
    assert x.ratio_intervals == [ratio_interval(headline_interval(base.cases[0]), headline_interval(c.cases[0]))
                                 for c in (c1, c2)]
    assert x.ratio_intervals[0] == pytest.approx((1.5 / 1.001 * 0.999, 1.5 / 0.999 * 1.001), rel=1e-12)
    assert rows[1].ratios == [0.5, 1.0] and rows[1].verdicts == ["worse", "same"]
    assert rows[2].ratios == [pytest.approx(1.1), 0.5] and rows[2].verdicts == ["same", "worse"]
    assert [(r.run_to_run_cv, r.effect_threshold, r.noise_from) for r in rows] == [(None, 0.1, None)] * 3
    assert geo == {"gemm": [pytest.approx(math.sqrt(1.5 * 0.5)), pytest.approx(math.sqrt(0.5 * 1.0))],
                   "attention": [pytest.approx(1.1), 0.5]}
    assert only == [("base", ("gemm", "only-base", "cpu", "aibench")), ("c1", ("gemm", "only-c1", "cpu", "aibench"))]


def test_compare_of_two_runs_and_the_min_effect():
    base, c1, _ = _three_runs()
    rows, geo, only = compare([base, c1], min_effect=0.05)
    assert [r.verdicts for r in rows] == [["better"], ["worse"], ["better"]]  # z: 10% over a 5% effect
    assert [r.effect_threshold for r in rows] == [0.05] * 3
    assert geo == {"gemm": [pytest.approx(math.sqrt(0.75))], "attention": [pytest.approx(1.1)]}
    assert len(only) == 2


def test_the_baselines_headline_names_the_metric_and_unit_of_a_row():
    """A candidate of a newer aibench that lists another higher-is-better metric first is
    still judged by the baseline's headline, in the baseline's unit."""
    newer = _case("x", 0.5)
    newer.metrics = {"gbps": Metric(9.0, "GB/s", True), "tflops": Metric(0.5, "TFLOP/s (v2)", True)}
    (row,), _, _ = compare([_run([_case("x", 1.0)]), _run([newer], machine="b")])
    assert (row.metric, row.unit, row.values, row.ratios) == ("tflops", "TFLOP/s", [1.0, 0.5], [0.5])


def test_a_case_no_run_passed_with_a_headline_is_not_compared():
    headless = _case("h", 1.0)
    del headless.metrics["tflops"]
    failed_with_figure = _case("f", 1.0, status="failed")
    rows, _, only = compare([_run([headless, failed_with_figure, _case("x")]),
                             _run([headless, failed_with_figure, _case("x")], machine="b")])
    assert [r.case_id for r in rows] == ["x"] and only == []


def test_a_ratio_that_is_not_a_number_is_left_out_of_the_geometric_mean():
    base = _run([_case("x", 1.0), _case("zero", 0.0, stats=None), _case("tiny", 1e300, stats=None)])
    cand = _run([_case("x", 0.5), _case("zero", 1.0, stats=None), _case("tiny", 1e-300, stats=None)], machine="b")
    rows, geo, _ = compare([base, cand])
    assert math.isnan(rows[1].ratios[0]) and rows[2].ratios[0] == 0.0  # 1e-600 underflows to 0
    assert geo == {"gemm": [0.5]}
    rows, geo, _ = compare([_run([_case("zero", 0.0)]), _run([_case("zero", 1.0)], machine="b")])
    assert math.isnan(geo["gemm"][0])  # no ratio at all: no mean


def test_the_threshold_comes_from_the_reruns_else_the_windows():
    """A 10% loss with tight intervals: `worse` under the 10% minimum; with reruns that move
    4% (threshold 3 x CV, about 17%) or windows that move more, `same`."""
    steady = Samples(samples_s=[1.0] * 12, summary=interval_stats(1.0, 0.999, 1.001).summary)
    jumpy = [1.0, 1.0 / 1.09] * 6  # each sample alone: 1.4826 x ln(1.09) / 2, 3x that is about 19%
    base = _run([_case("r", 1.0, spread=0.001), _case("w", 1.0, stats=_windowed(jumpy)),
                 _case("s", 1.0, stats=steady)])
    cand = _run([_case("r", 0.9, spread=0.001), _case("w", 0.9, stats=_windowed(jumpy)),
                 _case("s", 0.9, stats=steady)], machine="b")
    reruns = [_run([_case("r", 1.04), _case("s", 1.0)]), _run([_case("r", 0.96), _case("s", 1.0)])]
    rows = {r.case_id: r for r in compare([base, cand], reruns=reruns)[0]}
    cv = run_to_run_cv([1.0, 1.04, 0.96])
    assert (rows["r"].run_to_run_cv, rows["r"].noise_from) == (pytest.approx(cv), "reruns")
    assert rows["r"].effect_threshold == pytest.approx(3 * cv) and rows["r"].verdicts == ["same"]
    assert (rows["s"].run_to_run_cv, rows["s"].noise_from, rows["s"].effect_threshold) == (0.0, "reruns", 0.1)
    assert rows["s"].verdicts == ["worse"]
    spread = 1.4826 * math.log(1.09) / 2
    assert (rows["w"].run_to_run_cv, rows["w"].noise_from) == (pytest.approx(spread, rel=1e-9), "windows")
    assert rows["w"].effect_threshold == pytest.approx(3 * spread) and rows["w"].verdicts == ["same"]
    rows = {r.case_id: r for r in compare([base, cand])[0]}
    assert rows["r"].noise_from is None and rows["r"].verdicts == ["worse"]


# ---- the gate: --fail-below and failing closed -------------------------------------------


def test_gate_outcomes_name_each_candidate_and_case_not_wholly_over_the_floor():
    base = _run([_case("x", 1.0, spread=0.01), _case("y", 1.0, spread=0.05), _case("z", 1.0)], machine="base")
    c1 = _run([_case("x", 1.0, spread=0.01), _case("y", 0.88, spread=0.05), _case("z", 0.9 * 1.03)], machine="c1")
    c2 = _run([_case("x", 0.5, spread=0.01), _case("y", 1.0, spread=0.01), _case("z", 1.0)], machine="c2")
    runs = [base, c1, c2]
    rows, _, _ = compare(runs)
    out = gate_outcomes(runs, rows, 0.9)
    assert [(g["machine"], g["case"], g["outcome"], g["values"]) for g in out] == [
        ("c2", ["gemm", "x", "cpu", "aibench"], "fail", [1.0, 0.5]),
        ("c1", ["gemm", "y", "cpu", "aibench"], "inconclusive", [1.0, 0.88])]
    assert out[0]["ratio"] == 0.5 and out[0]["interval"] == list(rows[0].ratio_intervals[1])
    assert out[1]["interval"] == list(rows[1].ratio_intervals[0])
    # z at 0.927: its interval (0.909..0.946) is wholly over the floor; at a floor of its low, too
    assert gate_outcomes(runs, rows, rows[2].ratio_intervals[0][0])[0]["case"][1] == "x"


def test_gate_outcomes_of_the_same_machine_name_twice_are_told_apart():
    runs = [_run([_case("x", 1.0)], machine="n"), _run([_case("x", 0.5)], machine="n")]
    assert [g["machine"] for g in gate_outcomes(runs, compare(runs)[0], 0.9)] == ["n#2"]


def test_gateable_is_passed_with_a_headline_and_not_throttled():
    headless = _case()
    del headless.metrics["tflops"]
    assert gateable(_case()) and gateable(_case(telemetry={"throttled": False})) and gateable(_case(telemetry={}))
    assert not gateable(_case(telemetry={"throttled": True}))
    assert not gateable(_case(status="failed")) and not gateable(headless)


def test_not_passed_by_candidates_names_every_baseline_case_a_candidate_lost():
    headless = _case("w")
    del headless.metrics["tflops"]
    throttled = _case("t", telemetry={"throttled": True})
    base = _run([_case(k) for k in ("ok", "f", "s", "m", "w", "t")] + [_case("unjudged", status="failed")])
    c1 = _run([_case("ok"), _case("f", status="failed"), _case("s", status="skipped"), headless, throttled,
               _case("unjudged")], machine="c1")
    c2 = _run([_case(k) for k in ("ok", "f", "s", "m", "w", "t")], machine="c2")
    assert not_passed_by_candidates([base, c1, c2]) == [
        ("c1", ("gemm", k, "cpu", "aibench"), status)
        for k, status in (("f", "failed"), ("s", "skipped"), ("m", "missing"), ("w", "without a figure"),
                          ("t", "ran throttled"))]
    assert not_passed_by_candidates([c2, base]) == []  # a case only the candidate passed is not lost


def test_the_baseline_is_never_judged_against_itself():
    """A baseline that lists one case twice (cuda:0 passed, cuda:1 failed: one case of the
    target kind cuda) loses nothing to itself: only the candidates are judged."""
    base = _run([_case("x", target="cuda:0"), _case("x", target="cuda:1", status="failed")], machine="base")
    assert not_passed_by_candidates([base, _run([_case("x", target="cuda:0")], machine="b")]) == []


def test_not_in_baseline_names_a_candidates_case_the_baseline_cannot_judge():
    base = _run([_case("x"), _case("throttled", telemetry={"throttled": True}), _case("failed", status="failed")])
    cand = _run([_case("x"), _case("throttled"), _case("failed"), _case("new"), _case("lost", status="failed")],
                machine="b")
    later = _run([_case("new2")], machine="c")
    assert not_in_baseline([base, cand, later]) == [("b", ("gemm", k, "cpu", "aibench"))
                                                    for k in ("throttled", "failed", "new")] + \
        [("c", ("gemm", "new2", "cpu", "aibench"))]
    assert not_in_baseline([cand, base]) == []  # the baseline's only gateable case, x, is in cand


# ---- same_machine: a --rerun must be of the baseline's machine ---------------------------


def test_same_machine_needs_the_name_and_agrees_on_what_both_fingerprints_record():
    def run(machine, system):
        return _run([], machine=machine, system=system)

    full = {"hostname": "h1", "cpu": {"model": "EPYC"}}
    assert same_machine(run("a", full), run("a", dict(full)))
    assert not same_machine(run("a", full), run("b", full))
    assert not same_machine(run("a", full), run("a", {"hostname": "h2", "cpu": {"model": "EPYC"}}))
    assert not same_machine(run("a", full), run("a", {"hostname": "h1", "cpu": {"model": "Xeon"}}))
    # Where one fingerprint lacks a field (or holds it in another shape) it cannot disagree.
    assert same_machine(run("a", full), run("a", {}))
    assert same_machine(run("a", {}), run("a", full))
    assert same_machine(run("a", full), run("a", {"hostname": "h1"}))
    assert same_machine(run("a", full), run("a", {"hostname": "h1", "cpu": "EPYC"}))
    assert same_machine(run("a", {"cpu": {"model": "EPYC"}}), run("a", {"hostname": "h9", "cpu": {"model": "EPYC"}}))
