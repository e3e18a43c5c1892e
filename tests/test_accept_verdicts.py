"""accept's verdicts from hand-made cases, in process and fast: every rule of
aibench.accept.judge (fail closed, thresholds and their boundaries, which case speaks for a
check, the fleet median of the other nodes, hardware that is not the spec's). These are the
tests scripts/mutation_test.py runs against the module's mutants (targets.toml)."""

from __future__ import annotations

import math

import pytest

from aibench.accept.judge import (FAIL, INCONCLUSIVE, MISSING, PASS, NodeJudgement, Verdict, hardware_problems,
                                  judge_runs)
from aibench.accept.spec import Check, Spec
from aibench.results import FAILED, PASSED, SKIPPED, CaseResult, Metric, RunDocument, Validation
from result_helpers import interval_stats

CPU_SYSTEM = {"hostname": "n", "cpu": {"model": "AMD EPYC 9654", "arch": "x86_64"}, "nics": []}


def _case(tflops=1.0, spread=None, *, case_id="c1", impl="aibench", status=PASSED, metrics=None, percent=None,
          telemetry=None, error=None, validation=None, impl_detail=None, dtype="fp32"):
    """A gemm case whose median time is 1 s; `spread` (a power of two, exact in binary)
    makes the 95% interval of the time [1/spread, spread] s, so the TFLOP/s interval is
    [tflops / spread, tflops * spread] exactly. No spread: no statistics, no interval."""
    if metrics is None:
        metrics = {"tflops": Metric(tflops, "TFLOP/s", True), "time_us": Metric(1e6, "us", False)}
    return CaseResult(suite="gemm", case_id=case_id, params={"dtype": dtype}, target="cpu", impl=impl,
                      status=status, metrics=metrics,
                      stats=interval_stats(1.0, 1 / spread, spread) if spread else None,
                      validation=validation, percent_of_peak=percent, telemetry=telemetry, error=error,
                      impl_detail=impl_detail or {})


def _check(metric="tflops", select="best", **threshold) -> Check:
    if "min" in threshold or "max" in threshold:
        threshold.setdefault("unit", "TFLOP/s" if metric == "tflops" else "us")
    return Check(id="c", suite="gemm", metric=metric, source="test", spec="t", select=select,
                 params={"dtype": "fp32"}, **threshold)


def _spec(checks, hardware=()) -> Spec:
    return Spec(name="t", description="", tier="quick", target="cpu", files=[], hardware=list(hardware),
                checks=list(checks))


def _doc(cases, machine="node-a", system=None) -> RunDocument:
    return RunDocument(command=["aibench", "run"], machine=machine, tier="quick", targets=["cpu"],
                       system=dict(system or CPU_SYSTEM), aibench={"version": "0", "commit": None}, cases=cases)


def _verdict(cases, references=None, **check) -> Verdict:
    [node] = judge_runs(_spec([_check(**check)]), [_doc(cases)], references)
    return node.verdicts[0]


# ---- the case a check judges, and the ways it fails closed ------------------------------


def test_no_matching_case_is_missing():
    v = _verdict([_case(dtype="bf16")], min=0.5)
    assert (v.verdict, v.reason, v.cases) == (MISSING, "no case in the run matches this check", 0)


def test_a_failed_case_fails_the_check_with_its_error_or_its_validation_reason():
    v = _verdict([_case(2.0, case_id="a"), _case(status=FAILED, case_id="b", error="3 wrong elements",
                                                  validation=Validation(FAILED, reason="ignored"))], min=0.5)
    assert (v.verdict, v.case, v.cases) == (FAIL, "b [aibench]", 2)
    assert v.reason == "1 matching case(s) failed: 3 wrong elements"
    v = _verdict([_case(status=FAILED, validation=Validation(FAILED, reason="max error 0.3"))], min=0.5)
    assert v.reason == "1 matching case(s) failed: max error 0.3"
    v = _verdict([_case(status=FAILED)], min=0.5)
    assert (v.verdict, v.reason) == (FAIL, "1 matching case(s) failed: ")


def test_only_skipped_cases_fail_the_check_with_the_skip_reason():
    v = _verdict([_case(status=SKIPPED, metrics={}, validation=Validation(SKIPPED, reason="no GPU"))], min=0.5)
    assert (v.verdict, v.case, v.reason) == (FAIL, "c1 [aibench]", "skipped: no GPU")
    v = _verdict([_case(status=SKIPPED, metrics={}, error="timed out")], min=0.5)
    assert v.reason == "skipped: timed out"
    v = _verdict([_case(status=SKIPPED, metrics={}, validation=Validation(SKIPPED))], min=0.5)
    assert v.reason == "skipped: no reason recorded"


def test_a_skipped_case_fails_each_but_not_best_when_another_passed():
    cases = [_case(2.0, case_id="a"), _case(status=SKIPPED, case_id="b", metrics={}, error="why")]
    assert _verdict(cases, min=0.5).verdict == PASS
    v = _verdict(cases, min=0.5, select="each")
    assert (v.verdict, v.case, v.reason) == (FAIL, "b [aibench]", "skipped: why")


def test_a_case_without_the_metric_is_missing_and_names_the_metrics_it_has():
    v = _verdict([_case(metrics={"gbps": Metric(1.0, "GB/s", True), "iops": Metric(2.0, "IOPS", True)})], min=0.5)
    assert (v.verdict, v.reason) == (MISSING, "no matching case has the metric 'tflops' (it has: gbps, iops)")
    v = _verdict([_case(metrics={})], min=0.5)
    assert v.reason == "no matching case has the metric 'tflops' (it has: none)"


def test_each_needs_the_metric_on_every_case_best_judges_the_ones_that_have_it():
    cases = [_case(2.0, case_id="a"), _case(case_id="b", metrics={"gbps": Metric(1.0, "GB/s", True)})]
    assert _verdict(cases, min=0.5).verdict == PASS
    v = _verdict(cases, min=0.5, select="each")
    assert (v.verdict, v.case) == (MISSING, "b [aibench]")
    assert v.reason == "a matching case has no metric 'tflops' (select = \"each\" judges every one)"


def test_a_throttled_case_fails():
    v = _verdict([_case(2.0, case_id="a"), _case(3.0, case_id="b", telemetry={"throttled": True})], min=0.5)
    assert (v.verdict, v.case) == (FAIL, "b [aibench]")
    assert v.reason == "ran throttled (a thermal or hardware clock slowdown during the case)"
    assert _verdict([_case(2.0, telemetry={"throttled": False})], min=0.5).verdict == PASS


@pytest.mark.parametrize("figure", [math.inf, math.nan, -1.0])
def test_a_figure_that_is_no_number_fails(figure):
    v = _verdict([_case(figure)], min=0.5)
    assert (v.verdict, v.reason) == (FAIL, f"the figure {figure!r} is not a finite, non-negative number")


def test_a_zero_lower_is_better_figure_passes_a_maximum():
    v = _verdict([_case(metrics={"time_us": Metric(0.0, "us", False)})], metric="time_us", max=5.0)
    assert (v.verdict, v.value, v.margin) == (PASS, 0.0, None)


# ---- thresholds: min / max, boundaries, intervals ----------------------------------------


def test_min_judges_the_whole_interval_of_the_figure():
    # tflops 1.0 with spread 2: the interval [0.5, 2.0]
    v = _verdict([_case(1.0, 2)], min=0.5)  # the interval's low end on the threshold: pass
    assert (v.verdict, v.reason, v.value, v.unit, v.limit, v.interval, v.margin) == \
        (PASS, "", 1.0, "TFLOP/s", 0.5, [0.5, 2.0], 1.0)
    v = _verdict([_case(1.0, 2)], min=2.0)  # the high end on it: not below, inconclusive
    assert (v.verdict, v.margin) == (INCONCLUSIVE, -0.5)
    assert v.reason == "the threshold 2 lies inside the 95% interval [0.5, 2]"
    v = _verdict([_case(1.0, 2)], min=4.0)
    assert (v.verdict, v.reason) == (FAIL, "1 is below 4")


def test_without_statistics_the_figure_alone_is_judged():
    v = _verdict([_case(1.0)], min=1.0)
    assert (v.verdict, v.interval, v.margin) == (PASS, None, 0.0)
    assert _verdict([_case(1.0)], min=1.5).verdict == FAIL


def test_max_judges_a_lower_is_better_figure_and_its_interval():
    # time_us 1e6 with spread 2: the interval [5e5, 2e6]
    v = _verdict([_case(1.0, 2)], metric="time_us", max=2e6)  # high end on the threshold: pass
    assert (v.verdict, v.limit, v.interval, v.margin) == (PASS, 2e6, [5e5, 2e6], 1.0)
    v = _verdict([_case(1.0, 2)], metric="time_us", max=5e5)  # low end on it: inconclusive
    assert (v.verdict, v.margin) == (INCONCLUSIVE, -0.5)
    v = _verdict([_case(1.0, 2)], metric="time_us", max=2.5e5)
    assert (v.verdict, v.reason) == (FAIL, "1e+06 is above 2.5e+05")


def test_min_on_a_lower_is_better_metric_means_at_least():
    assert _verdict([_case(1.0)], metric="time_us", min=5e5).verdict == PASS
    assert _verdict([_case(1.0)], metric="time_us", max=5e5).verdict == FAIL


def test_a_unit_the_spec_does_not_name_fails():
    v = _verdict([_case(2.0)], min=0.5, unit="GFLOP/s")
    assert (v.verdict, v.reason) == (FAIL, "unit mismatch: the run has TFLOP/s, the spec says GFLOP/s")


# ---- fraction of peak --------------------------------------------------------------------


def test_fraction_of_peak_judges_the_percent_and_scales_the_interval():
    v = _verdict([_case(2.0, 2, percent=50.0)], fraction_of_peak=0.125)
    # 50% of peak at 2 TFLOP/s: the interval [1, 4] TFLOP/s is [0.25, 1.0] of peak
    assert (v.verdict, v.value, v.unit, v.limit, v.interval, v.margin) == \
        (PASS, 0.5, "fraction of peak", 0.125, [0.25, 1.0], 3.0)
    assert _verdict([_case(2.0, 2, percent=50.0)], fraction_of_peak=0.5).verdict == INCONCLUSIVE
    assert _verdict([_case(2.0, 2, percent=50.0)], fraction_of_peak=2.0).verdict == FAIL


def test_fraction_of_peak_of_a_lower_is_better_metric_is_still_at_least():
    assert _verdict([_case(percent=50.0)], metric="time_us", fraction_of_peak=0.25).verdict == PASS


def test_fraction_of_peak_without_a_peak_is_missing():
    v = _verdict([_case(2.0)], fraction_of_peak=0.5)
    assert (v.verdict, v.reason) == (MISSING, "no known peak for this case, so no fraction of peak")


@pytest.mark.parametrize("tflops, percent", [(2.0, math.nan), (0.0, 50.0)])
def test_fraction_of_peak_of_no_figure_fails(tflops, percent):
    v = _verdict([_case(tflops, percent=percent)], fraction_of_peak=0.5)
    assert (v.verdict, v.reason) == (FAIL, f"percent of peak {percent!r} of a figure {tflops:g}")


# ---- ratio to a reference run ------------------------------------------------------------


def _reference(*cases) -> dict[str, RunDocument]:
    return {"ref": _doc(list(cases), machine="ref")}


def test_ratio_to_reference_scales_the_reference_figure():
    refs = _reference(_case(9.0, case_id="other"), _case(4.0))
    v = _verdict([_case(2.0)], references=refs, ratio_to_reference=0.5, reference="ref")
    assert (v.verdict, v.limit) == (PASS, 2.0)
    assert _verdict([_case(1.5)], references=refs, ratio_to_reference=0.5, reference="ref").verdict == FAIL
    # lower is better: at most the reference's time over the ratio
    v = _verdict([_case()], references=_reference(_case(metrics={"time_us": Metric(6e5, "us", False)})),
                 metric="time_us", ratio_to_reference=0.5, reference="ref")
    assert (v.verdict, v.limit) == (PASS, 1.2e6)


def test_a_reference_figure_below_one_is_a_figure_to_scale():
    v = _verdict([_case(0.5)], references=_reference(_case(0.5)), ratio_to_reference=0.5, reference="ref")
    assert (v.verdict, v.limit) == (PASS, 0.25)


@pytest.mark.parametrize("reference_case", [
    _case(4.0, case_id="other"),
    _case(4.0, status=SKIPPED),
    _case(metrics={"gbps": Metric(4.0, "GB/s", True)}),
])
def test_ratio_to_reference_without_a_passed_reference_figure_is_missing(reference_case):
    v = _verdict([_case(2.0)], references=_reference(reference_case), ratio_to_reference=0.5, reference="ref")
    assert (v.verdict, v.reason) == (MISSING, "the reference ref has no passed figure for c1 [aibench]")


@pytest.mark.parametrize("figure", [0.0, math.inf, math.nan])
def test_ratio_to_a_reference_figure_that_is_none_is_missing(figure):
    v = _verdict([_case(2.0)], references=_reference(_case(figure)), ratio_to_reference=0.5, reference="ref")
    assert (v.verdict, v.reason) == (MISSING, f"the reference ref's figure {figure!r} is no figure to scale")


# ---- which case speaks for a check -------------------------------------------------------


def test_best_is_the_best_verdict_then_the_best_margin():
    # the higher figure is inconclusive (wide interval), the lower one passes: the pass speaks
    v = _verdict([_case(3.0, 4, case_id="wide"), _case(2.0, 1, case_id="narrow")], min=1.5)
    assert (v.verdict, v.case, v.cases) == (PASS, "narrow [aibench]", 2)
    # two passes: the larger margin speaks, whatever the figures' order
    v = _verdict([_case(4.0, percent=40.0, case_id="a"), _case(1.0, percent=80.0, case_id="b")],
                 fraction_of_peak=0.25)
    assert (v.case, v.margin) == ("b [aibench]", 2.2)


def test_each_is_the_worst_verdict_then_the_smallest_margin():
    v = _verdict([_case(3.0, case_id="a"), _case(2.0, case_id="b"), _case(4.0, case_id="c")], min=1.0,
                 select="each")
    assert (v.verdict, v.case, v.margin, v.cases) == (PASS, "b [aibench]", 1.0, 3)
    v = _verdict([_case(3.0, case_id="a"), _case(0.5, case_id="b")], min=1.0, select="each")
    assert (v.verdict, v.case) == (FAIL, "b [aibench]")


def test_best_prefers_a_figure_at_the_threshold_to_one_below_it():
    # both inconclusive (wide intervals): margin 0 (on the threshold) beats margin -0.1
    v = _verdict([_case(0.9, 2, case_id="below"), _case(1.0, 2, case_id="at")], min=1.0)
    assert (v.verdict, v.case, v.margin) == (INCONCLUSIVE, "at [aibench]", 0.0)


def test_a_zero_lower_is_better_figure_is_the_best_case_not_the_worst():
    def latency(us, case_id):
        return _case(case_id=case_id, metrics={"lat_us": Metric(us, "us", False)})

    cases = [latency(1.0, "one"), latency(0.0, "zero")]
    assert _verdict(cases, metric="lat_us", max=1.5).case == "zero [aibench]"
    v = _verdict(cases, metric="lat_us", max=1.5, select="each")
    assert (v.verdict, v.case, v.margin) == (PASS, "one [aibench]", 0.5)


@pytest.mark.parametrize("metric, best", [("tflops", "high [aibench]"), ("time_us", "fast [aibench]")])
def test_among_equal_verdicts_without_a_margin_the_best_figure_speaks(metric, best):
    cases = [_case(1.0, case_id="low", metrics={"tflops": Metric(1.0, "TFLOP/s", True),
                                                 "time_us": Metric(2e6, "us", False)}),
             _case(2.0, case_id="high", metrics={"tflops": Metric(2.0, "TFLOP/s", True),
                                                  "time_us": Metric(3e6, "us", False)}),
             _case(0.5, case_id="fast", metrics={"tflops": Metric(0.5, "TFLOP/s", True),
                                                  "time_us": Metric(1e6, "us", False)})]
    v = _verdict(cases, metric=metric, fraction_of_peak=0.5)  # no peak: every one is missing
    assert (v.verdict, v.case) == (MISSING, best)


# ---- fleets: the median of the other nodes -----------------------------------------------


def _fleet(figures: dict[str, list[CaseResult]], ratio=0.75, metric="tflops") -> dict[str, Verdict]:
    spec = _spec([_check(metric=metric, ratio_to_fleet_median=ratio)])
    judged = judge_runs(spec, [_doc(cases, machine=node) for node, cases in figures.items()])
    return {j.node: j.verdicts[0] for j in judged}


def test_a_node_is_judged_against_the_median_of_the_other_nodes():
    # With itself in the median (2.0) the slow node would pass 0.75 x 2.0 = 1.5; the other
    # nodes' median is 2.2, and 1.6 is below 0.75 x 2.2.
    v = _fleet({"slow": [_case(1.6)], "b": [_case(2.0)], "c": [_case(2.4)]})
    assert (v["slow"].verdict, v["slow"].limit) == (FAIL, 0.75 * ((2.0 + 2.4) / 2))
    assert (v["b"].verdict, v["b"].limit) == (PASS, 0.75 * 2.0)
    assert (v["c"].verdict, v["c"].limit) == (PASS, 0.75 * 1.8)


def test_two_nodes_are_each_judged_against_the_other():
    v = _fleet({"a": [_case(1.0)], "b": [_case(2.0)]}, ratio=0.5)
    assert (v["a"].verdict, v["a"].limit, v["b"].verdict, v["b"].limit) == (PASS, 1.0, PASS, 0.5)


def test_a_lower_is_better_fleet_check_is_at_most_the_median_over_the_ratio():
    def timed(us):
        return [_case(metrics={"time_us": Metric(us, "us", False)})]

    v = _fleet({"a": timed(1.0), "b": timed(3.0), "c": timed(6.0)}, ratio=0.5, metric="time_us")
    assert (v["a"].limit, v["c"].verdict, v["c"].limit) == (9.0, FAIL, 4.0)


def test_the_fleet_median_leaves_out_figures_that_are_none_and_cases_that_did_not_pass():
    v = _fleet({"a": [_case(1.0)], "b": [_case(2.0)], "zero": [_case(0.0)], "nan": [_case(math.nan)],
                "failed": [_case(100.0, status=FAILED)]})
    assert v["a"].limit == 0.75 * 2.0 and v["b"].limit == 0.75 * 1.0


def test_a_single_node_or_a_case_no_other_node_ran_has_no_fleet_median():
    reason = "no fleet median: not a fleet run, or no other node has this case"
    assert (_fleet({"a": [_case(1.0)]})["a"].verdict, _fleet({"a": [_case(1.0)]})["a"].reason) == (MISSING, reason)
    v = _fleet({"a": [_case(1.0)], "b": [_case(1.0, case_id="other")]})
    assert (v["a"].verdict, v["a"].reason) == (MISSING, reason)


# ---- documents, hardware, the node's outcome ---------------------------------------------


def test_a_later_document_replaces_the_same_case_of_an_earlier_one():
    spec = _spec([_check(min=1.5)])
    [node] = judge_runs(spec, [_doc([_case(1.0)]), _doc([_case(2.0)])])
    assert (node.verdicts[0].verdict, node.verdicts[0].value, node.passed) == (PASS, 2.0, True)
    [node] = judge_runs(spec, [_doc([_case(2.0)]), _doc([_case(1.0)])])
    assert (node.verdicts[0].verdict, node.passed) == (FAIL, False)


def test_hardware_that_is_not_the_specs_turns_a_pass_into_a_fail_and_leaves_the_rest():
    spec = _spec([_check(min=0.5), _check(metric="gbps", min=1.0, unit="GB/s")],
                 hardware=[("h100", {"gpu_name": "H100"})])
    [node] = judge_runs(spec, [_doc([_case(2.0)])])
    problem = "h100: no GPU in the run (the spec is for GPUs matching 'H100')"
    assert node.hardware_problems == [problem] and not node.passed
    assert (node.verdicts[0].verdict, node.verdicts[0].reason) == (FAIL, "hardware does not match the spec: " + problem)
    assert node.verdicts[1].verdict == MISSING


def test_a_node_passes_only_with_verdicts_every_one_passed_and_its_hardware():
    ok = Verdict("c", "t", "gemm", "tflops", PASS, "", ">= 1", "s")
    assert NodeJudgement("n", "n", [], [ok, ok]).passed
    assert not NodeJudgement("n", "n", [], []).passed
    assert not NodeJudgement("n", "n", ["not the GPU"], [ok]).passed
    assert not NodeJudgement("n", "n", [], [ok, Verdict("c", "t", "gemm", "tflops", INCONCLUSIVE, "", "", "")]).passed


def _gpus(*names):
    return {"gpus": {"available": True, "devices": [{"name": n} for n in names]}}


def test_hardware_gpus_are_those_of_the_document_with_the_most():
    spec = _spec([], hardware=[("h200", {"gpu_name": "h200(?! nvl)", "min_gpus": 2})])
    assert hardware_problems(spec, [{**CPU_SYSTEM, **_gpus("NVIDIA H200")}, _gpus("NVIDIA H200", "NVIDIA H200"),
                                    {"cpu": {}}], []) == []
    assert hardware_problems(spec, [_gpus("NVIDIA H200 NVL", "NVIDIA H200")], []) == \
        ["h200: GPU NVIDIA H200 NVL is not 'h200(?! nvl)'"]
    assert hardware_problems(spec, [_gpus("NVIDIA H200")], []) == ["h200: 1 GPU(s), the spec needs 2"]


def test_hardware_devices_named_by_the_cases_when_the_system_has_no_gpus():
    spec = _spec([], hardware=[("tpu", {"gpu_name": "TPU v5"})])
    tpu = _case(impl_detail={"device_kind": "TPU v5 lite"})
    assert hardware_problems(spec, [CPU_SYSTEM], [tpu, _case()]) == []
    assert hardware_problems(spec, [CPU_SYSTEM], [_case()]) == \
        ["tpu: no GPU in the run (the spec is for GPUs matching 'TPU v5')"]


def test_hardware_cpu_model_and_arch_are_searched_in_the_first_documents_cpu():
    spec = _spec([], hardware=[("epyc", {"cpu_model": "epyc", "cpu_arch": "x86_64"})])
    assert hardware_problems(spec, [CPU_SYSTEM], []) == []
    xeon = {"cpu": {"model": "Intel Xeon", "arch": "x86_64"}}
    assert hardware_problems(spec, [xeon, CPU_SYSTEM], []) == ["epyc: cpu model 'Intel Xeon' is not 'epyc'"]
    assert hardware_problems(spec, [{}], []) == ["epyc: cpu model '' is not 'epyc'", "epyc: cpu arch '' is not 'x86_64'"]


def test_hardware_nodes_from_the_mpi_job_else_the_cases_topology():
    spec = _spec([], hardware=[("pair", {"min_nodes": 2})])
    assert hardware_problems(spec, [CPU_SYSTEM, {"mpi": {"nodes": 2}}], []) == []
    spread = _case(impl_detail={"topology": {"hosts": ["a", "b"]}})
    assert hardware_problems(spec, [CPU_SYSTEM], [_case(), spread]) == []
    assert hardware_problems(spec, [CPU_SYSTEM], []) == ["pair: the run spans 1 node(s), the spec needs 2"]
    assert hardware_problems(_spec([], hardware=[("four", {"min_nodes": 4})]), [{"mpi": {"nodes": 3}}], [spread]) \
        == ["four: the run spans 3 node(s), the spec needs 4"]


def _nics(*speeds):
    return {"nics": [{"name": f"eth{i}", "speed_gbps": s} for i, s in enumerate(speeds)]}


def test_hardware_nics_of_the_document_that_records_the_most():
    spec = _spec([], hardware=[("nic", {"min_nics": 2, "nic_min_gbps": 400})])
    assert hardware_problems(spec, [_nics(400), {"cpu": {}}, _nics(400, 400)], []) == []
    assert hardware_problems(spec, [_nics(400, 200)], []) == \
        ["nic: 1 NIC(s) at 400 Gbit/s or more, the spec needs 2"]
    assert hardware_problems(spec, [{"cpu": {}}], []) == \
        ["nic: the run document does not record the node's NICs (made by an older aibench)"]


def test_hardware_nic_count_alone_counts_nics_of_any_speed_and_speed_alone_needs_one():
    assert hardware_problems(_spec([], hardware=[("n", {"min_nics": 2})]), [_nics(None, 1)], []) == []
    assert hardware_problems(_spec([], hardware=[("n", {"min_nics": 2})]), [_nics(None)], []) == \
        ["n: 1 NIC(s) at 0 Gbit/s or more, the spec needs 2"]
    assert hardware_problems(_spec([], hardware=[("n", {"nic_min_gbps": 100})]), [_nics(100)], []) == []
    assert hardware_problems(_spec([], hardware=[("n", {"nic_min_gbps": 1})]), [_nics(None)], []) == \
        ["n: 0 NIC(s) at 1 Gbit/s or more, the spec needs 1"]


# ---- the case window's health and a node's device spread, as judge_check and judge_runs use them


@pytest.fixture
def window_health(monkeypatch):
    """Each case's health record stands for window_problems' answer: {"bad": [...], "unknown": [...]}."""
    import aibench.accept.judge as judge

    monkeypatch.setattr(judge, "window_problems", lambda record, required: (record["bad"], record["unknown"]))


def _with_health(case, bad=(), unknown=()):
    case.health = {"bad": list(bad), "unknown": list(unknown)}
    return case


def test_a_check_requiring_health_fails_on_an_unhealthy_window_and_is_missing_on_an_unknown_one(window_health):
    healthy = _with_health(_case(2.0, case_id="ok"))
    v = _verdict([healthy, _with_health(_case(3.0, case_id="hot"), bad=["throttled 2 s", "ECC 1"])], min=0.5,
                 health={"throttle_s_max": 0.0})
    assert (v.verdict, v.case, v.reason) == (FAIL, "hot [aibench]", "unhealthy window: throttled 2 s; ECC 1")
    v = _verdict([healthy, _with_health(_case(3.0, case_id="old"), unknown=["no health record"])], min=0.5,
                 health={"throttle_s_max": 0.0})
    assert (v.verdict, v.case, v.reason) == (MISSING, "old [aibench]", "health required, not known: no health record")
    assert _verdict([healthy], min=0.5, health={"throttle_s_max": 0.0}).verdict == PASS
    # without the requirement the window's health is not judged
    assert _verdict([_with_health(_case(2.0), bad=["throttled"])], min=0.5).verdict == PASS


def test_an_unhealthy_window_speaks_before_one_of_unknown_health(window_health):
    cases = [_with_health(_case(3.0, case_id="old"), unknown=["no record"]), _with_health(_case(2.0, case_id="hot"),
                                                                                           bad=["throttled"])]
    v = _verdict(cases, min=0.5, health={"throttle_s_max": 0.0})
    assert (v.verdict, v.case, v.reason) == (FAIL, "hot [aibench]", "unhealthy window: throttled")


def test_a_spread_verdict_joins_the_nodes_it_applies_to_with_the_hosts_of_a_per_gpu_fleet(monkeypatch):
    import aibench.accept.judge as judge

    seen = {}

    def judge_spread(check, nodes, hosts):
        seen.update(hosts)
        return {"gpu0": ("fail", "gpu0 10% short", 0.1), "gpu1": ("missing", "no figure", None)}

    monkeypatch.setattr(judge, "judge_spread", judge_spread)
    fleet = _doc([], machine="rack")
    fleet.fleet = {"nodes": [{"node": "gpu0", "host": "h1"}, {"node": "gpu1", "host": "h1"}, {"node": "solo"}]}
    for node in ("gpu0", "gpu1", "solo"):
        c = _case(2.0)
        c.node = node
        fleet.cases.append(c)
    spec = _spec([_check(min=0.5, spread={"max": 0.05})])
    judged = {j.node: j.verdicts for j in judge_runs(spec, [fleet])}
    assert seen == {"gpu0": "h1", "gpu1": "h1", "solo": "solo"}
    assert [v.verdict for v in judged["solo"]] == [PASS]
    spread = judged["gpu0"][1]
    assert (spread.check, spread.verdict, spread.reason, spread.value, spread.unit, spread.threshold) == \
        ("c:spread", FAIL, "gpu0 10% short", 0.1, "shortfall", "each device within 5% of the node's best")
    assert (judged["gpu1"][1].verdict, judged["gpu1"][1].value, judged["gpu1"][1].unit) == (MISSING, None, None)
