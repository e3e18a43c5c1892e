"""Summary statistics of timing samples, and the stopping rule of the sampler."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

# Two-sided 95% normal quantile, used for the distribution-free CI of the median.
_Z95 = 1.959963984540054


@dataclass(frozen=True)
class Summary:
    """Statistics of per-repetition times in seconds (every sample is kept beside it)."""

    n: int
    median: float
    mean: float
    min: float
    max: float
    p5: float
    p95: float
    stdev: float
    cv: float
    ci95_low: float
    ci95_high: float

    @property
    def ci95_rel_halfwidth(self) -> float:
        """Half the width of the median's 95% CI, relative to the median."""
        if self.median <= 0:
            return math.inf
        return (self.ci95_high - self.ci95_low) / 2.0 / self.median

    def to_dict(self) -> dict:
        d = asdict(self)
        d["ci95_rel_halfwidth"] = self.ci95_rel_halfwidth
        return d


def median_ci95(sorted_samples: np.ndarray) -> tuple[float, float]:
    """Distribution-free 95% confidence interval of the median (binomial order statistics).

    With n samples the ranks n/2 -/+ 1.96*sqrt(n)/2 bracket the median with about 95%
    probability, whatever the distribution: timing noise is skewed, so no normal model.
    """
    n = len(sorted_samples)
    if n < 3:
        return float(sorted_samples[0]), float(sorted_samples[-1])
    half = _Z95 * math.sqrt(n) / 2.0
    lo = max(0, int(math.floor(n / 2.0 - half)))
    hi = min(n - 1, int(math.ceil(n / 2.0 + half)) - 1)
    return float(sorted_samples[lo]), float(sorted_samples[hi])


# Fewest windows whose medians give the interval (6: their min..max covers the median
# with 1 - 2/2^6 = 97% probability); with fewer, the samples' own interval stands.
MIN_WINDOWS_FOR_CI = 6


def summarize(samples, window: int = 1) -> Summary:
    """The statistics of `samples` (in the order taken). `window` > 1: they were taken in
    windows of that many (interleaved with other impls, harness.measure_interleaved);
    samples within a window are not independent (they share the machine's state of the
    moment), so the median's interval comes from the windows' medians, the independent
    units, once there are MIN_WINDOWS_FOR_CI of them."""
    taken = np.asarray(samples, dtype=np.float64)
    x = np.sort(taken)
    if x.size == 0:
        raise ValueError("no samples to summarize")
    mean = float(x.mean())
    stdev = float(x.std(ddof=1)) if x.size > 1 else 0.0
    median = float(np.median(x))
    lo, hi = median_ci95(x)
    windows = taken.size // window if window > 1 else 0
    if windows >= MIN_WINDOWS_FOR_CI:
        window_medians = np.sort(np.median(taken[:windows * window].reshape(windows, window), axis=1))
        w_lo, w_hi = median_ci95(window_medians)
        lo, hi = min(lo, w_lo, median), max(hi, w_hi, median)
    return Summary(
        n=int(x.size),
        median=median,
        mean=mean,
        min=float(x[0]),
        max=float(x[-1]),
        p5=float(np.percentile(x, 5)),
        p95=float(np.percentile(x, 95)),
        stdev=stdev,
        cv=stdev / mean if mean > 0 else 0.0,
        ci95_low=lo,
        ci95_high=hi,
    )


# --- Verdicts between two figures (aibench compare, the run summary) -------------------

# The smallest difference called one, as asv compare's default --factor 1.1. Grounded in
# run-to-run noise: two quick gemm runs on one quiet 2-vCPU Xeon VM moved by up to 5.8%
# between runs (issue #26: bf16 0.942, int8 1.054), more than the 5% this was before, so
# 2 of 14 A/A cases were called different; 10% leaves every one of them `same`.
DEFAULT_MIN_EFFECT = 0.10
# k of the effect threshold max(min_effect, k x run-to-run CV). Two runs of one machine,
# each off by a relative c (one standard deviation), differ by about c*sqrt(2); a
# difference over 3c is then over 2.1 of those standard deviations: under 4% of same-machine
# pairs (normal model), and the same k as benchmarks/gate.py's default.
NOISE_K = 3.0
# A robust standard deviation from the median absolute deviation (normal data).
_MAD_TO_SD = 1.4826


def run_to_run_cv(values) -> float | None:
    """The relative spread of one figure over repeated runs (the standard deviation of the
    log figures, about the CV for small spreads): from 3 runs on, 1.4826 x their median
    absolute deviation, so that one disturbed run does not set it; with 2, their sample
    standard deviation. None with fewer than 2 positive figures."""
    logs = np.log([v for v in values if v > 0])
    if logs.size < 2:
        return None
    if logs.size == 2:
        return float(np.std(logs, ddof=1))
    return float(_MAD_TO_SD * np.median(np.abs(logs - np.median(logs))))


def window_spread(samples, window: int) -> float | None:
    """How much one run's figure moves over its own course: run_to_run_cv of the medians
    of its windows (`window` samples each, in the order taken; a window of 1 is one sample).
    The windows are minutes of the same run, so this is what the run can see of the
    between-run noise (the machine's state of the moment); None under 3 windows."""
    taken = np.asarray(samples, dtype=np.float64)
    window = max(1, int(window))
    count = taken.size // window
    if count < 3:
        return None
    return run_to_run_cv(np.median(taken[:count * window].reshape(count, window), axis=1))


def effect_threshold(min_effect: float, cv: float | None) -> float:
    """The relative difference a verdict needs: the minimum effect, or more when the
    figure moves more than that between runs."""
    return min_effect if cv is None else max(min_effect, NOISE_K * cv)


def ratio_interval(base: tuple[float, float], other: tuple[float, float]) -> tuple[float, float]:
    """An interval of other/base from the two figures' 95% intervals: (other's low / base's
    high, other's high / base's low). It holds the ratio at least when both intervals hold
    their figures, and it leaves out 1 exactly when the two intervals do not overlap."""
    return other[0] / base[1], other[1] / base[0]


def verdict(ratio: float, interval: tuple[float, float], threshold: float) -> str:
    """`better` / `worse` when the ratio's interval leaves out 1 (the difference is not the
    samples' noise) and the ratio is beyond 1 + threshold (or under 1 / (1 + threshold)),
    like asv's factor; `same` otherwise, and for a ratio that is not a number."""
    factor = 1.0 + threshold
    if interval[0] > 1.0 and ratio > factor:
        return "better"
    if interval[1] < 1.0 and ratio * factor < 1.0:
        return "worse"
    return "same"


def gate(interval: tuple[float, float], floor: float) -> str:
    """`pass` when the whole interval of the ratio is at or above floor, `fail` when it is
    all below (or not a number: fail closed), `inconclusive` when it straddles the floor."""
    if interval[0] >= floor:
        return "pass"
    if interval[1] >= floor:
        return "inconclusive"
    return "fail"
