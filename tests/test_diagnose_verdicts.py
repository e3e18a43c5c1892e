"""diagnose.py's reference bands, shortfalls and defective-node verdicts, in memory (no
document written, no run launched): fast enough to run against every mutant of the module
(scripts/mutation/targets.toml). tests/test_fleet.py and test_fail_closed.py cover the same
through fleet runs and the CLI."""

from __future__ import annotations

import math

import pytest

from aibench.diagnose import (INCONCLUSIVE, Band, Finding, _interval, _judged_figure, bands, defective_nodes,
                              diagnose, inconclusive_cases)
from aibench.errors import UsageError
from aibench.results import CaseResult, Metric, RunDocument, Validation
from result_helpers import interval_stats

NO_REFERENCE = "no case of this node could be compared with a reference"


def _case(node=None, value=1.0, spread=None, case_id="x", impl="aibench", status="passed", error=None,
          reason=None):
    """A gemm case of `value` TFLOP/s timed at 1/value s; spread: its time's 95% interval
    +-spread (None: no statistics, the figure is its own interval)."""
    t = 1.0 / value if value and math.isfinite(value) and value > 0 else 1.0
    return CaseResult(suite="gemm", case_id=case_id, params={}, target="cpu", impl=impl, status=status,
                      metrics={"tflops": Metric(value, "TFLOP/s", True), "time_us": Metric(t * 1e6, "us", False)},
                      stats=interval_stats(t, t * (1 - spread), t * (1 + spread)) if spread is not None else None,
                      validation=Validation(status, reason=reason) if reason is not None else None,
                      error=error, node=node)


def _fleet(cases, nodes=("n0", "n1", "n2")):
    return RunDocument(command=["aibench"], machine="rack", tier="quick", targets=["cpu"], system={},
                       aibench={"version": "0", "commit": None}, cases=cases,
                       fleet={"nodes": [{"node": n, "host": n, "rank": i, "local_rank": 0, "target": "cpu",
                                         "system": {}} for i, n in enumerate(nodes)],
                              "concurrency": "every node at once"})


def _node(name, cases):
    return RunDocument(command=["aibench"], machine=name, tier="quick", targets=["cpu"], system={},
                       aibench={"version": "0", "commit": None}, cases=cases)


def _where(node, case_id="x", impl="aibench"):
    return dict(node=node, suite="gemm", case_id=case_id, impl=impl)


KEY = ("gemm", "x", "cpu", "aibench")


# ---- a figure's interval and the reference band ------------------------------------------


def test_a_figures_interval_is_its_headline_interval_else_the_figure_alone():
    c = _case(value=2.0, spread=0.25)  # time 0.5 s, 0.375..0.625 s
    assert _interval(c, 2.0) == pytest.approx((2.0 * 0.5 / 0.625, 2.0 * 0.5 / 0.375), rel=1e-12)
    assert _interval(_case(value=2.0), 2.0) == (2.0, 2.0)


def test_judged_figure_is_the_headline_and_its_interval():
    assert _judged_figure(_case(value=2.0, spread=0.25)) == pytest.approx((2.0, 1.6, 2.0 / 0.75), rel=1e-12)
    assert _judged_figure(_case(value=3.0)) == (3.0, 3.0, 3.0)
    headless = _case()
    del headless.metrics["tflops"]
    assert _judged_figure(headless) is None
    for figure in (0.0, -1.0, math.inf, math.nan):
        assert _judged_figure(_case(value=figure)) is None, figure


def test_a_band_is_the_median_figure_and_the_medians_of_the_interval_bounds():
    """Three nodes: the band's low and high are the medians of the nodes' bounds, not the
    bounds of the median node (node b's wide interval sets both)."""
    nodes = [_node("a", [_case(value=1.0, spread=0.01)]), _node("b", [_case(value=2.0, spread=0.3)]),
             _node("c", [_case(value=3.0, spread=0.01)])]
    band = bands(nodes)[KEY]
    assert band == Band(2.0, pytest.approx(2.0 * 0.5 / 0.65), pytest.approx(2.0 * 0.5 / 0.35))
    two = bands(nodes[:2])[KEY]
    assert (two.median, two.low, two.high) == pytest.approx((1.5, (1 / 1.01 + 2 / 1.3) / 2, (1 / 0.99 + 2 / 0.7) / 2))


def test_a_band_takes_only_passed_finite_positive_figures():
    figures = [_case(value=1.0), _case(value=3.0), _case(value=0.0), _case(value=-5.0), _case(value=math.nan),
               _case(value=math.inf), _case(value=100.0, status="failed")]
    headless = _case(value=100.0)
    del headless.metrics["tflops"]
    band = bands([_node(f"n{i}", [c]) for i, c in enumerate([*figures, headless])])[KEY]
    assert band == Band(2.0, 2.0, 2.0)


def test_a_band_needs_min_nodes_figures():
    one, two = [_node("a", [_case(value=1.0)])], [_node("a", [_case(value=1.0)]), _node("b", [_case(value=3.0)])]
    assert bands(one) == {KEY: Band(1.0, 1.0, 1.0)}  # a baseline of one node is a reference
    assert bands(one, min_nodes=2) == {}
    assert bands(two, min_nodes=2) == {KEY: Band(2.0, 2.0, 2.0)}


# ---- diagnose: against the fleet ---------------------------------------------------------


def test_one_node_needs_a_baseline_two_do_not():
    with pytest.raises(UsageError, match="baseline"):
        diagnose(_fleet([_case("n0")], nodes=("n0",)))
    assert diagnose(_fleet([_case("n0"), _case("n1")], nodes=("n0", "n1"))) == []
    assert diagnose(_fleet([_case("n0")], nodes=("n0",)), _node("golden", [_case()])) == []


def test_a_node_short_beyond_the_intervals_is_below_the_fleet_median():
    doc = _fleet([_case("n0", 1.0, 0.01), _case("n1", 1.02, 0.01), _case("n2", 0.6, 0.01)])
    (f,) = diagnose(doc, threshold=0.1)
    ref_lo, ref_hi = 1.0 / 1.01, 1.0 / 0.99  # the medians of the nodes' lows and highs: n0's
    assert f == Finding(**_where("n2"), reason="below fleet median", metric="tflops (TFLOP/s)", value=0.6,
                        reference=1.0, shortfall=pytest.approx(0.4), interval=[pytest.approx(0.6 / 1.01),
                                                                               pytest.approx(0.6 / 0.99)],
                        reference_interval=[pytest.approx(ref_lo), pytest.approx(ref_hi)], detail="")
    assert defective_nodes([f]) == {"n2": [f]}


def test_a_short_figure_whose_interval_reaches_the_reference_is_inconclusive():
    doc = _fleet([_case("n0", 1.0, 0.4), _case("n1", 1.0, 0.4), _case("n2", 0.82, 0.4)])
    (f,) = diagnose(doc, threshold=0.1)
    assert (f.node, f.reason, f.shortfall, f.reference) == ("n2", INCONCLUSIVE, pytest.approx(0.18), 1.0)
    assert f.detail == "its interval reaches within the threshold of the reference's: too noisy to judge"
    assert f.interval == [pytest.approx(0.82 / 1.4), pytest.approx(0.82 / 0.6)]
    assert defective_nodes([f]) == {} and inconclusive_cases([f]) == [f]
    # The same figures with tight intervals: defective.
    tight = _fleet([_case("n0", 1.0, 0.005), _case("n1", 1.0, 0.005), _case("n2", 0.82, 0.005)])
    assert [(f.node, f.reason) for f in diagnose(tight, threshold=0.1)] == [("n2", "below fleet median")]


def test_exactly_the_threshold_short_is_not_flagged():
    """Figures without statistics (their own intervals): the band is 2.0..2.0; a node at
    1.0 with a threshold of 0.5 is exactly at the limit on both tests, and passes."""
    doc = _fleet([_case("n0", 2.0), _case("n1", 2.0), _case("n2", 1.0)])
    assert diagnose(doc, threshold=0.5) == []
    (f,) = diagnose(doc, threshold=0.49)
    assert (f.node, f.reason, f.shortfall) == ("n2", "below fleet median", 0.5)


def test_the_default_threshold_is_ten_percent():
    doc = _fleet([_case("n0", 1.0, 0.001), _case("n1", 1.0, 0.001), _case("n2", 0.85, 0.001)])
    assert [(f.node, f.reason) for f in diagnose(doc)] == [("n2", "below fleet median")]
    assert diagnose(doc, threshold=0.2) == []


def test_a_fleet_reference_needs_two_nodes_that_passed_the_case():
    """n2 failed x: the fleet of x is n0 and n1, whose median is their mean; n1 at half of n0
    is 33% below it, beyond the intervals."""
    doc = _fleet([_case("n0", 1.0, 0.001), _case("n1", 0.5, 0.001), _case("n2", 1.0, status="failed"),
                  *[_case(n, 1.0, 0.001, case_id="y") for n in ("n0", "n1", "n2")]])
    found = [(f.node, f.case_id, f.reason) for f in diagnose(doc, threshold=0.1)]
    assert found == [("n1", "x", "below fleet median"), ("n2", "x", "failed")]
    alone = _fleet([_case("n0", 1.0, 0.001), _case("n1", 0.5, status="failed"), _case("n2", 1.0, status="failed"),
                    *[_case(n, 1.0, 0.001, case_id="y") for n in ("n0", "n1", "n2")]])
    assert [(f.node, f.case_id, f.reason) for f in diagnose(alone)] == [("n1", "x", "failed"), ("n2", "x", "failed")]


def test_a_failed_case_is_listed_with_its_error_else_its_validation_reason():
    doc = _fleet([_case("n0", status="failed", error="CUDA error: out of memory"),
                  _case("n1", status="failed", reason="max rel error 0.3"), _case("n2", status="failed"),
                  *[_case(n, 1.0, case_id="y") for n in ("n0", "n1", "n2")]])
    assert diagnose(doc) == [Finding(**_where("n0"), reason="failed", detail="CUDA error: out of memory"),
                             Finding(**_where("n1"), reason="failed", detail="max rel error 0.3"),
                             Finding(**_where("n2"), reason="failed", detail="")]


def test_a_skip_counts_only_where_someone_else_passed_the_case():
    y = [_case(n, 1.0, case_id="y") for n in ("n0", "n1", "n2")]
    skipped_here = _fleet([_case("n0"), _case("n1"), _case("n2", status="skipped", reason="no such library"), *y])
    assert diagnose(skipped_here) == [Finding(**_where("n2"), reason="skipped", detail="no such library")]
    everywhere = _fleet([_case(n, status="skipped") for n in ("n0", "n1", "n2")] + y)
    assert diagnose(everywhere) == []  # nobody's fault
    base = _node("golden", [_case(value=1.0), _case(value=1.0, case_id="y")])
    assert [(f.node, f.reason) for f in diagnose(everywhere, base)] == [(n, "skipped") for n in ("n0", "n1", "n2")]


def test_a_case_lacking_on_a_node_or_passed_without_a_figure_is_missing():
    y = [_case(n, 1.0, case_id="y") for n in ("n0", "n1", "n2")]
    headless = _case("n2")
    headless.metrics = {}
    doc = _fleet([_case("n0"), _case("n1"), headless, *y])
    assert diagnose(doc) == [Finding(**_where("n2"), reason="missing", detail="passed without a finite figure")]
    zero = _fleet([_case("n0"), _case("n1"), _case("n2", 0.0), *y])
    assert diagnose(zero) == [Finding(**_where("n2"), reason="missing", detail="passed without a finite figure")]
    lacking = _fleet([_case("n0"), _case("n1"), *y])
    assert diagnose(lacking) == [Finding(**_where("n2"), reason="missing", detail="the other nodes ran this case")]


def test_a_figureless_pass_is_missing_only_where_a_figure_was_expected():
    """x: n0 passed without a figure, n1 and n2 failed. No node (and no baseline) has a
    figure for x, so n0's figureless pass names nothing; with a baseline that has x, it does."""
    headless = _case("n0")
    headless.metrics = {}
    y = [_case(n, 1.0, case_id="y") for n in ("n0", "n1", "n2")]
    doc = _fleet([headless, _case("n1", status="failed"), _case("n2", status="failed"), *y])
    assert [(f.node, f.reason) for f in diagnose(doc)] == [("n1", "failed"), ("n2", "failed")]
    base = _node("golden", [_case(value=1.0), _case(value=1.0, case_id="y")])
    assert [(f.node, f.reason, f.detail) for f in diagnose(doc, base)] == [
        ("n0", "missing", "passed without a finite figure"), ("n1", "failed", ""), ("n2", "failed", "")]


def test_a_node_with_nothing_judged_is_not_shown_healthy():
    """n2 has no case at all; in the second fleet n2 alone passed x (no fleet of two to judge
    it by) while n0 and n1 are named for failing it: nothing of n2's was compared."""
    doc = _fleet([_case("n0"), _case("n1")])
    assert diagnose(doc) == [Finding(**_where("n2"), reason="missing", detail="the other nodes ran this case"),
                             Finding(node="n2", suite="", case_id="", impl="", reason="missing",
                                     detail="the run has no case for this node")]
    alone = _fleet([_case("n0", status="failed"), _case("n1", status="failed"), _case("n2")])
    assert diagnose(alone) == [Finding(**_where("n0"), reason="failed", detail=""),
                               Finding(**_where("n1"), reason="failed", detail=""),
                               Finding(node="n2", suite="", case_id="", impl="", reason="missing", detail=NO_REFERENCE)]


def test_a_node_named_for_a_failure_is_not_also_listed_as_unjudged():
    doc = _fleet([_case("n0"), _case("n1"), _case("n2", status="failed")])
    assert diagnose(doc) == [Finding(**_where("n2"), reason="failed", detail="")]


def test_an_inconclusive_node_was_judged():
    doc = _fleet([_case("n0", 1.0, 0.4), _case("n1", 1.0, 0.4), _case("n2", 0.82, 0.4)])
    assert [f.reason for f in diagnose(doc)] == [INCONCLUSIVE]


# ---- diagnose: against a baseline --------------------------------------------------------


def test_against_a_baseline_the_reference_is_its_nodes_median():
    baseline = _fleet([_case("b0", 1.0), _case("b1", 1.2), _case("b2", 1.1)], nodes=("b0", "b1", "b2"))
    node = _fleet([_case("n0", 0.8)], nodes=("n0",))
    (f,) = diagnose(node, baseline, threshold=0.1)
    assert (f.node, f.reason, f.reference, f.shortfall) == ("n0", "below baseline", 1.1, pytest.approx(1 - 0.8 / 1.1))
    assert f.reference_interval == [1.1, 1.1]
    assert diagnose(node, baseline, threshold=0.3) == []


def test_the_baseline_takes_over_from_the_fleet_where_it_has_the_case():
    """x: the fleet is slow as a whole (its median 0.5), the baseline says 1.0: every node is
    below the baseline. y: the baseline lacks it, so the fleet's median judges it."""
    doc = _fleet([*[_case(n, 0.5) for n in ("n0", "n1", "n2")], _case("n0", 1.0, case_id="y"),
                  _case("n1", 1.0, case_id="y"), _case("n2", 0.5, case_id="y")])
    found = diagnose(doc, _node("golden", [_case(value=1.0)]), threshold=0.1)
    assert [(f.node, f.case_id, f.reason, f.reference) for f in found] == [
        ("n0", "x", "below baseline", 1.0), ("n1", "x", "below baseline", 1.0), ("n2", "x", "below baseline", 1.0),
        ("n2", "y", "below fleet median", 1.0)]


def test_a_baseline_case_the_run_lacks_is_missing_on_every_node():
    doc = _fleet([_case("n0"), _case("n1")], nodes=("n0", "n1"))
    found = diagnose(doc, _node("golden", [_case(), _case(case_id="y")]))
    assert found == [Finding(**_where(n, "y"), reason="missing", detail="in the baseline, not in this run")
                     for n in ("n0", "n1")]


def test_nothing_in_common_with_the_baseline_names_the_node():
    node = _fleet([_case("n0")], nodes=("n0",))
    assert diagnose(node, _node("golden", [_case(case_id="other")])) == [
        Finding(**_where("n0", "other"), reason="missing", detail="in the baseline, not in this run")]


# ---- the verdict: defective nodes, worst first; inconclusive cases -----------------------


def test_defective_nodes_worst_first_a_failure_worst_of_all():
    def short(node, shortfall, reason="below fleet median"):
        return Finding(**_where(node), reason=reason, shortfall=shortfall)

    mild, deep, mixed_low, mixed_high = short("a", 0.2), short("b", 0.5), short("c", 0.1), short("c", 0.6)
    failed, unsure = Finding(**_where("d"), reason="failed"), short("e", 0.9, INCONCLUSIVE)
    findings = [mild, deep, mixed_low, unsure, failed, mixed_high]
    per = defective_nodes(findings)
    assert list(per) == ["d", "c", "b", "a"]
    assert per == {"d": [failed], "c": [mixed_low, mixed_high], "b": [deep], "a": [mild]}
    assert inconclusive_cases(findings) == [unsure]
    assert defective_nodes([]) == {} and inconclusive_cases([mild]) == []
