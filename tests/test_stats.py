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
