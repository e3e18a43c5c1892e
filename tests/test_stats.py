import math

import numpy as np
import pytest

from aibench.harness import SamplingPolicy, measure
from aibench.stats import median_ci95, summarize


def test_summary_of_known_samples():
    s = summarize([5.0, 1.0, 3.0, 2.0, 4.0])
    assert (s.n, s.median, s.mean, s.min, s.max) == (5, 3.0, 3.0, 1.0, 5.0)
    assert s.stdev == pytest.approx(math.sqrt(2.5))
    assert s.cv == pytest.approx(math.sqrt(2.5) / 3.0)
    assert s.p5 == pytest.approx(1.2) and s.p95 == pytest.approx(4.8)


def test_median_ci_brackets_the_median_and_narrows_with_n():
    rng = np.random.default_rng(1)
    small = np.sort(rng.lognormal(0, 0.2, 20))
    large = np.sort(rng.lognormal(0, 0.2, 2000))
    for x in (small, large):
        lo, hi = median_ci95(x)
        assert lo <= np.median(x) <= hi
    assert (median_ci95(large)[1] - median_ci95(large)[0]) < (median_ci95(small)[1] - median_ci95(small)[0])


def test_median_ci_coverage_is_about_95_percent():
    rng = np.random.default_rng(2)
    true_median = np.exp(0.0)  # lognormal(0, s) has median 1
    hits = 0
    for _ in range(400):
        lo, hi = median_ci95(np.sort(rng.lognormal(0, 0.3, 31)))
        hits += lo <= true_median <= hi
    assert 0.90 <= hits / 400 <= 0.995


class FakeClock:
    """A timer whose per-repetition time follows a known sequence (no real sleeping)."""

    def __init__(self, per_rep):
        self.per_rep = per_rep
        self.calls = []

    def __call__(self, number):
        self.calls.append(number)
        return self.per_rep(len(self.calls)) * number


def test_measure_takes_at_least_five_samples_and_keeps_them():
    timer = FakeClock(lambda i: 1e-3)
    m = measure(timer, SamplingPolicy(budget_s=1.0, min_sample_s=0.01, warmup_s=0.0, settle_s=0.0))
    assert len(m.samples_s) >= 5
    assert m.number == 10  # 10 ms per sample at 1 ms per repetition
    assert m.summary.median == pytest.approx(1e-3)
    assert m.stopped_by == "ci"


def test_measure_keeps_sampling_noisy_timers_until_the_budget(monkeypatch):
    import types

    from aibench import harness

    rng = np.random.default_rng(3)
    timer = FakeClock(lambda i: 1e-3 if i == 1 else 1e-3 * rng.lognormal(0, 0.5))
    # The loop's clock is the time the fake timer reports: seven samples of about 1 ms
    # spend the 3 ms budget, so sampling stops at min_samples (the CI never gets tight).
    clock = {"now": 0.0}

    def advancing(number):
        elapsed = timer(number)
        clock["now"] += elapsed
        return elapsed

    monkeypatch.setattr(harness, "time", types.SimpleNamespace(perf_counter=lambda: clock["now"],
                                                               sleep=lambda s: None))
    m = measure(advancing, SamplingPolicy(budget_s=0.003, rel_ci=1e-6, min_samples=7, warmup_s=0.0, settle_s=0.0))
    assert m.stopped_by == "budget" and len(m.samples_s) == 7


def test_native_timing_loop_measures_real_time():
    from aibench import _core

    elapsed = _core.time_sleep(4, 0.01)
    assert 0.035 <= elapsed < 1.0
    assert 0 < _core.steady_clock_resolution_s() < 1e-3


@pytest.mark.parametrize("n, ranks", [
    (1, (0, 0)), (2, (0, 1)), (3, (0, 2)), (10, (1, 8)), (11, (2, 8)), (100, (40, 59)), (101, (40, 60)),
    (1000, (469, 530)),
])
def test_median_ci_is_the_binomial_order_statistics(n, ranks):
    """Ranks n/2 -/+ 1.96·sqrt(n)/2 (floor, ceil - 1), worked out by hand: the CI is these
    order statistics, not an approximation of them."""
    assert median_ci95(np.arange(n, dtype=float)) == (float(ranks[0]), float(ranks[1]))


def test_relative_halfwidth_and_degenerate_summaries():
    s = summarize([0.9, 1.0, 1.1] + [1.0] * 7)
    assert s.ci95_rel_halfwidth == pytest.approx((s.ci95_high - s.ci95_low) / 2 / s.median)
    # n=5: ranks 0 and 4; a median other than 1 so that no other formula agrees by chance
    assert summarize([2.4, 3.0, 3.6, 3.0, 3.0]).ci95_rel_halfwidth == pytest.approx(0.2)
    assert summarize([0.1, 0.2, 0.3]).cv == pytest.approx(0.5)  # stdev 0.1 over mean 0.2
    assert summarize([0.0, 0.0, 0.0]).ci95_rel_halfwidth == math.inf  # no median to be relative to
    zeros = summarize([0.0, 0.0])
    assert zeros.cv == 0.0 and zeros.stdev == 0.0
    one = summarize([5.0])
    assert (one.stdev, one.cv, one.ci95_low, one.ci95_high) == (0.0, 0.0, 5.0, 5.0)
    two = summarize([1.0, 3.0])
    assert two.stdev == pytest.approx(math.sqrt(2.0)) and (two.ci95_low, two.ci95_high) == (1.0, 3.0)
    with pytest.raises(ValueError):
        summarize([])


def test_run_to_run_cv_of_repeated_figures():
    from aibench.stats import run_to_run_cv

    assert run_to_run_cv([]) is None and run_to_run_cv([2.0]) is None
    assert run_to_run_cv([2.0, 0.0, -1.0]) is None  # figures of 0 or below are not runs
    # two runs: the sample standard deviation of the logs
    assert run_to_run_cv([1.0, 1.1]) == pytest.approx(math.log(1.1) / math.sqrt(2))
    assert run_to_run_cv([4.0, 4.0]) == 0.0
    # from three on, 1.4826 x the median absolute deviation of the logs: one wild run does
    # not set it
    logs = np.log([1.0, 1.02, 0.99, 1.01, 3.0])
    expected = 1.4826 * np.median(np.abs(logs - np.median(logs)))
    assert run_to_run_cv([1.0, 1.02, 0.99, 1.01, 3.0]) == pytest.approx(expected)
    assert run_to_run_cv([1.0, 1.02, 0.99, 1.01, 3.0]) < 0.03
    assert run_to_run_cv([10.0, 11.0, 12.0]) == pytest.approx(1.4826 * math.log(12 / 11))  # the middle deviation


def test_effect_threshold_is_the_larger_of_the_minimum_and_the_noise():
    from aibench.stats import DEFAULT_MIN_EFFECT, NOISE_K, effect_threshold

    assert DEFAULT_MIN_EFFECT == 0.10 and NOISE_K == 3.0  # asv compare's default factor 1.1; gate.py's k
    assert effect_threshold(0.05, None) == 0.05
    assert effect_threshold(0.05, 0.01) == 0.05
    assert effect_threshold(0.05, 0.04) == pytest.approx(0.12)
    assert effect_threshold(0.2, 0.04) == 0.2


def test_ratio_interval_leaves_out_one_exactly_when_the_intervals_are_apart():
    from aibench.stats import ratio_interval

    assert ratio_interval((2.0, 4.0), (3.0, 6.0)) == (0.75, 3.0)
    assert ratio_interval((1.0, 2.0), (2.5, 5.0)) == (1.25, 5.0)  # apart: above 1
    assert ratio_interval((2.5, 5.0), (1.0, 2.0)) == (0.2, 0.8)  # apart: below 1
    lo, hi = ratio_interval((1.0, 2.0), (2.0, 3.0))  # touching: 1 is in
    assert lo == 1.0 and hi == 3.0


def test_verdict_needs_the_interval_and_the_effect():
    from aibench.stats import verdict

    assert verdict(1.2, (1.1, 1.3), 0.05) == "better"
    assert verdict(1 / 1.2, (0.8, 0.9), 0.05) == "worse"
    assert verdict(1.2, (0.9, 1.3), 0.05) == "same"  # the samples' noise covers it
    assert verdict(0.8, (0.7, 1.1), 0.05) == "same"
    assert verdict(1.03, (1.01, 1.05), 0.05) == "same"  # apart, but under the minimum effect
    assert verdict(0.97, (0.95, 0.99), 0.05) == "same"
    assert verdict(1.03, (1.01, 1.05), 0.02) == "better"
    assert verdict(0.97, (0.95, 0.99), 0.02) == "worse"
    # the boundaries: an interval touching 1 or a ratio at exactly the factor is no verdict
    assert verdict(1.2, (1.0, 1.3), 0.05) == "same" and verdict(0.8, (0.7, 1.0), 0.05) == "same"
    assert verdict(1.25, (1.1, 1.4), 0.25) == "same" and verdict(0.8, (0.7, 0.9), 0.25) == "same"
    assert verdict(1.26, (1.1, 1.4), 0.25) == "better" and verdict(0.79, (0.7, 0.9), 0.25) == "worse"
    # worse mirrors better in log terms: under 1/1.05 = 0.95238, not under 0.95
    assert verdict(0.951, (0.9, 0.99), 0.05) == "worse" and verdict(0.9523, (0.9, 0.99), 0.05) == "worse"
    assert verdict(0.9525, (0.9, 0.99), 0.05) == "same"
    assert verdict(math.nan, (math.nan, math.nan), 0.05) == "same"


def test_gate_on_the_ratio_interval():
    from aibench.stats import gate

    assert gate((0.91, 1.0), 0.9) == "pass"
    assert gate((0.9, 1.0), 0.9) == "pass"  # at the floor passes
    assert gate((0.85, 0.95), 0.9) == "inconclusive"
    assert gate((0.85, 0.9), 0.9) == "inconclusive"
    assert gate((0.8, 0.89), 0.9) == "fail"
    assert gate((math.nan, math.nan), 0.9) == "fail"  # no ratio: fail closed


def test_windowed_samples_get_the_interval_of_their_windows():
    """Samples taken in windows that each sit at a different level (the machine drifted
    between windows): the samples' own interval is far too narrow; the windows' is not."""
    from aibench.stats import summarize

    levels = [1.00, 1.10, 0.95, 1.08, 0.97, 1.12, 0.93, 1.05]
    taken = [lvl * (1 + 0.001 * i) for lvl in levels for i in range(5)]
    alone, windowed = summarize(taken), summarize(taken, window=5)
    assert windowed.median == alone.median
    assert windowed.ci95_high - windowed.ci95_low > 1.3 * (alone.ci95_high - alone.ci95_low)
    # 8 window medians: their order statistics 2 and 7 (median_ci95) bound the interval
    assert windowed.ci95_low == pytest.approx(0.95 * 1.002) and windowed.ci95_high == pytest.approx(1.10 * 1.002)
    assert summarize(taken[:25], window=5).ci95_low == summarize(taken[:25]).ci95_low  # 5 windows: too few


def test_six_windows_are_enough_for_the_windows_interval():
    """MIN_WINDOWS_FOR_CI windows exactly (6) take the windows' interval: 6 window medians
    give their min..max, wider here than the 12 samples' own order statistics 2..9."""
    from aibench.stats import MIN_WINDOWS_FOR_CI

    taken = [1.0, 1.0] + [5.0, 5.0] * 4 + [9.0, 9.0]
    assert MIN_WINDOWS_FOR_CI == 6 and len(taken) == 2 * MIN_WINDOWS_FOR_CI
    alone, windowed = summarize(taken), summarize(taken, window=2)
    assert (alone.ci95_low, alone.ci95_high) == (5.0, 5.0)
    assert (windowed.ci95_low, windowed.ci95_high) == (1.0, 9.0)
    assert (summarize(taken[:10], window=2).ci95_low, summarize(taken[:10], window=2).ci95_high) == \
        (summarize(taken[:10]).ci95_low, summarize(taken[:10]).ci95_high)  # 5 windows: the samples'


def test_window_spread_is_the_robust_spread_of_the_window_medians():
    from aibench.stats import run_to_run_cv, window_spread

    # three windows of 2 samples whose medians are 1.0, 1.1, 1.3: the spread of those three
    samples = [0.9, 1.1, 1.0, 1.2, 1.2, 1.4, 5.0]  # the last, an incomplete window, is left out
    medians = [1.0, 1.1, 1.3]
    assert window_spread(samples, 2) == pytest.approx(run_to_run_cv(medians))
    assert window_spread(samples, 2) == pytest.approx(1.4826 * math.log(1.1))
    # a window of 1: every sample is a window
    assert window_spread([1.0, 1.1, 1.3], 1) == pytest.approx(run_to_run_cv([1.0, 1.1, 1.3]))
    assert window_spread([1.0, 1.1, 1.3], 0) == window_spread([1.0, 1.1, 1.3], 1)  # no window: one sample each
    assert window_spread([1.0, 1.0, 1.0, 1.0], 2) is None  # two windows cannot show a spread
    assert window_spread([2.0] * 9, 3) == 0.0
