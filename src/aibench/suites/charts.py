"""What a suite declares about its charts (`Suite.charts`); `aibench plot` (plot.py) draws
them from the passed cases of the run documents. Declarations only: nothing here draws.

Every line of a chart is one run x target x impl x `series`: the colour tells the impl and
series apart, the marker the run. A suite that declares nothing gets `Chart()`, which fits
any suite, a plugin's included (see Chart)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from ..units import size_label


@dataclass(frozen=True)
class Chart:
    """`metric` against the parameter `x`. Every field has a default, so `Chart()` fits any
    suite: its cases' headline metric against the first of its numeric parameters that
    takes several values (one that takes one value when none varies; the cases by name when
    it has no numeric parameter), one line per combination of the other parameters that
    take several values, labelled `name=value`.

    `name` and `title` may hold `{split}`: with `split`, one chart per value of that
    parameter (gemm: one per dtype)."""

    name: str = ""  # the PNG's file stem; default the suite's name
    title: str = ""  # default "<suite>: <metric> against <x>"
    x: str | None = None
    x_label: str = ""  # default the parameter's name
    x_ticks: Callable[[float], str] | None = None  # tick text (bytes: size_ticks); default {:g}
    log_x: bool | None = None  # None: a base-2 log axis when the values are positive and span 4x or more
    metric: str | None = None  # default the cases' headline metric (results.CaseResult.headline)
    y_label: str | Callable[[Any], str] = ""  # default the metric's unit; a callable gets the split value
    series: tuple[str, ...] | None = None  # the parameters that tell lines apart; None: those that vary
    labels: Mapping[str, Callable[[Any], str]] = field(default_factory=dict)  # a series value's text; default str
    split: str | None = None
    split_order: tuple = ()  # split values in this order first, the others as they come
    where: Callable[[dict[str, Any]], bool] | None = None  # which cases it holds, by their params
    peaks: bool = False  # each run's theoretical peak (the cases' `peak`) as a dashed line


@dataclass(frozen=True)
class PercentileChart:
    """Each case's latency percentiles (metrics `lat_p<N>_<unit>` and `ttfb_p<N>_<unit>`) as a
    line over the percentile names (p50, p90, p99, p99.9), one panel per family present."""

    name: str
    title: str


def size_ticks(nbytes: float) -> str:
    """Bytes in binary units as an axis shows them: 8, 4K, 1.5M, 2G."""
    return size_label(nbytes, exact=False)
