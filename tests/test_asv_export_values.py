"""asv_export's benchmark classes and the values, samples and points it records in asv's
results, in memory (no results tree written, no run launched): fast enough to run against
every mutant of the module (scripts/mutation/targets.toml). tests/test_asv_export.py
covers the same through export_run, asv's files and `asv publish`."""

from __future__ import annotations

import datetime
import itertools

import pytest
from asv.results import Results

from aibench.asv_export import _add_track, benchmark_dicts, case_table_spec
from aibench.results import CaseResult, Metric, Samples
from aibench.suites import get_suite
from aibench.suites.base import AsvSpec, AsvTrack
from result_helpers import interval_stats

# Loaded here, once: asv_export asks every case whether it holds its suite's parameters.
GEMM_PARAMS = tuple(get_suite("gemm").params)
STARTED = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)
FLOPS = 2 * 512**3


def _case(case_id="c1", impl="aibench", target="cpu", status="passed", metrics=None, suite="pytest:loader",
          stats=None, params=None):
    return CaseResult(suite=suite, case_id=case_id, params=params or {}, target=target, impl=impl, status=status,
                      metrics=metrics if metrics is not None else {"ops": Metric(10.0, "ops/s", True)}, stats=stats)


# ---- case_table_spec: the asv class of a suite without an AsvSpec ------------------------


def test_a_case_table_has_one_track_per_metric_of_the_passed_cases():
    cases = [_case(metrics={"ops": Metric(1.0, "ops/s", True), "lat p99/us": Metric(2.0, "us", False)}),
             _case("c2", metrics={"ops": Metric(1.0, "ops/s", True), "mem.GB": Metric(3.0, "GB", True)}),
             _case("c3", status="failed", metrics={"errors": Metric(1.0, "1", False)})]
    spec = case_table_spec("pytest:loader", cases, {})
    assert spec.tracks == (AsvTrack("track_ops", "ops", "ops/s"), AsvTrack("track_lat_p99_us", "lat p99/us", "us"),
                           AsvTrack("track_mem_GB", "mem.GB", "GB"))
    assert (spec.class_name, spec.param_names, spec.version) == ("Benchmarks", ("case", "impl", "target"), "1")


def test_a_case_table_is_over_the_passed_cases_ids_impls_and_target_kinds():
    cases = [_case("c1", "a", "cuda:0"), _case("c2", "b", "cuda:3"), _case("c1", "b", "cpu"),
             _case("c9", "z", "tpu:1", status="skipped")]
    spec = case_table_spec("pytest:loader", cases, {})
    assert spec.param_values == (("c1", "c2"), ("a", "b"), ("cuda", "cpu"))
    assert spec.case_key(cases[1]) == ("c2", "b", "cuda")
    assert spec.key({}, "cpu", "a") is None  # a case table places cases by case_key only


def test_a_case_table_keeps_the_points_exported_before():
    """asv keeps one parameter list per benchmark: what benchmarks.json holds for the
    suite's track (as reprs) comes first, then this run's new values."""
    known = {"pytest_loader.Benchmarks.track_ops": {"params": [["'old'", "'c1'"], ["'a'"], ["'cpu'"]]},
             "other.Benchmarks.track_ops": {"params": [["'stranger'"], ["'x'"], ["'cpu'"]]}}
    spec = case_table_spec("pytest:loader", [_case("c1", "b", "cuda:0"), _case("new", "a", "cpu")], known)
    assert spec.param_values == (("old", "c1", "new"), ("a", "b"), ("cpu", "cuda"))
    assert case_table_spec("pytest:loader", [_case("c1")], {}).param_values == (("c1",), ("aibench",), ("cpu",))


# ---- _add_track: what asv records for one track -------------------------------------------


def _gemm(size=512, dtype="fp32", impl="aibench", stats="samples", metrics=None, params=None):
    """A gemm case at 2 x size^3 FLOP, timed by skewed samples (median 1.2 ms: a sample
    inverted about the median differs from the measured one), or by `stats`."""
    times = [2.0e-3, 1.0e-3, 1.1e-3, 4.0e-3, 1.2e-3]
    t = 1.2e-3
    return CaseResult(suite="gemm", case_id=f"{size}-{dtype}", target="cpu", impl=impl, status="passed",
                      params=params if params is not None else {"m": size, "n": size, "k": size, "dtype": dtype},
                      metrics=metrics if metrics is not None else {
                          "tflops": Metric(2 * size**3 / t / 1e12, "TFLOP/s", True),
                          "time_us": Metric(t * 1e6, "us", False)},
                      stats=Samples(times) if stats == "samples" else stats)


def _spec():
    """Two tracks over (size, dtype, impl), a case placed by its parameters."""
    return AsvSpec(class_name="G", param_names=("size", "dtype", "impl"),
                   param_values=((512, 1024), ("fp32", "bf16"), ("aibench",)),
                   tracks=(AsvTrack("track_tflops", "tflops", "TFLOP/s"),
                           AsvTrack("track_time", "time_us", "seconds", 1e-6)),
                   version="1", key=lambda params, target, impl: (params["m"], params["dtype"], impl))


def _record(cases, results=None, track=0):
    """(results, benchmark) after recording `cases` on the spec's track."""
    spec = _spec()
    results = results or Results({"machine": "n1", "python": "3"}, {}, "a" * 40, 0, "3", "aibench", {})
    bench = benchmark_dicts(spec, "gemm")[track]
    _add_track(results, bench, spec, spec.tracks[track], cases, STARTED)
    return results, bench


def _point(results, bench, point, what="value"):
    """What asv recorded for the benchmark at the point (size, dtype, impl)."""
    get = {"value": results.get_result_value, "samples": results.get_result_samples,
           "stats": results.get_result_stats}[what]
    combos = list(itertools.product(*bench["params"]))
    return get(bench["name"], bench["params"])[combos.index(tuple(repr(v) for v in point))]


def test_each_sample_is_recorded_as_its_own_throughput_in_the_order_taken():
    results, bench = _record([_gemm()])
    times = [2.0e-3, 1.0e-3, 1.1e-3, 4.0e-3, 1.2e-3]
    assert _point(results, bench, (512, "fp32", "aibench"), "samples") == \
        pytest.approx([FLOPS / t / 1e12 for t in times], rel=1e-12)
    assert _point(results, bench, (512, "fp32", "aibench")) == pytest.approx(FLOPS / 1.2e-3 / 1e12, rel=1e-12)
    stats = _point(results, bench, (512, "fp32", "aibench"), "stats")
    assert (stats["number"], stats["repeat"]) == (1, 5)  # each sample one measured operation


def test_each_sample_is_recorded_as_its_own_time_scaled_to_the_tracks_unit():
    results, bench = _record([_gemm()], track=1)
    assert bench["unit"] == "seconds"
    assert _point(results, bench, (512, "fp32", "aibench"), "samples") == \
        pytest.approx([2.0e-3, 1.0e-3, 1.1e-3, 4.0e-3, 1.2e-3], rel=1e-12)
    assert _point(results, bench, (512, "fp32", "aibench")) == pytest.approx(1.2e-3, rel=1e-12)


def test_a_figure_without_samples_is_recorded_as_it_is():
    """A case whose statistics keep no samples (only their summary), or that has none: the
    document's figure is the value, with no samples."""
    summary_only = _gemm(stats=interval_stats(1.2e-3, 1.1e-3, 1.3e-3))
    no_stats = _gemm(size=1024, stats=None)
    results, bench = _record([summary_only, no_stats], track=1)
    for size in (512, 1024):
        assert _point(results, bench, (size, "fp32", "aibench")) == pytest.approx(1.2e-3, rel=1e-12)
        assert _point(results, bench, (size, "fp32", "aibench"), "samples") is None


def test_only_cases_at_a_point_with_the_tracks_metric_are_recorded():
    foreign = _gemm(dtype="bf16", params={"m": 512, "dtype": "bf16"})  # lacks n and k: not placed
    assert set(GEMM_PARAMS) - set(foreign.params)
    elsewhere = _gemm(size=2048)  # not one of the spec's points
    no_time = _gemm(size=1024, metrics={"tflops": Metric(1.0, "TFLOP/s", True)})
    results, bench = _record([foreign, elsewhere, no_time, _gemm()], track=1)
    assert _point(results, bench, (512, "fp32", "aibench")) == pytest.approx(1.2e-3, rel=1e-12)
    for point in ((512, "bf16", "aibench"), (1024, "fp32", "aibench"), (1024, "bf16", "aibench")):
        assert _point(results, bench, point) is None, point


def test_a_track_no_case_reaches_records_nothing():
    results, bench = _record([_gemm(size=2048)])
    assert bench["name"] not in results.get_all_result_keys()


def test_a_second_run_of_the_commit_keeps_the_first_runs_points():
    results, bench = _record([_gemm(size=512)])
    _record([_gemm(size=1024, stats=None)], results)
    assert _point(results, bench, (512, "fp32", "aibench")) == pytest.approx(FLOPS / 1.2e-3 / 1e12, rel=1e-12)
    assert _point(results, bench, (1024, "fp32", "aibench")) == pytest.approx(2 * 1024**3 / 1.2e-3 / 1e12)
    assert _point(results, bench, (512, "fp32", "aibench"), "samples") is not None


def test_a_case_table_places_cases_by_their_own_key():
    cases = [_case("c1", "a", "cuda:0", metrics={"ops": Metric(3.0, "ops/s", True)}),
             _case("c2", "b", "cpu", metrics={"ops": Metric(5.0, "ops/s", True)})]
    spec = case_table_spec("pytest:loader", cases, {})
    (bench,) = benchmark_dicts(spec, "pytest:loader")
    results = Results({"machine": "n1", "python": "3"}, {}, "a" * 40, 0, "3", "aibench", {})
    _add_track(results, bench, spec, spec.tracks[0], cases, STARTED)
    assert _point(results, bench, ("c1", "a", "cuda")) == 3.0 and _point(results, bench, ("c2", "b", "cpu")) == 5.0
    assert _point(results, bench, ("c1", "b", "cuda")) is None
