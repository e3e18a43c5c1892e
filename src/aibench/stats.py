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


def summarize(samples) -> Summary:
    x = np.sort(np.asarray(samples, dtype=np.float64))
    if x.size == 0:
        raise ValueError("no samples to summarize")
    mean = float(x.mean())
    stdev = float(x.std(ddof=1)) if x.size > 1 else 0.0
    lo, hi = median_ci95(x)
    return Summary(
        n=int(x.size),
        median=float(np.median(x)),
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
