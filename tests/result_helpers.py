"""Samples for hand-made results: a median and its 95% CI, as compare and accept read them."""

from aibench.results import Samples
from aibench.stats import Summary


def interval_stats(median: float, ci95_low: float, ci95_high: float, n: int = 9) -> Samples:
    return Samples(samples_s=[], summary=Summary(n=n, median=median, mean=median, min=ci95_low, max=ci95_high,
                                                 p5=ci95_low, p95=ci95_high, stdev=0.0, cv=0.0,
                                                 ci95_low=ci95_low, ci95_high=ci95_high))
