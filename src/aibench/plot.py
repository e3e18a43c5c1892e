"""`aibench plot RUN [RUN ...]`: PNG charts of run documents, and a page that shows them.

Each suite declares its charts (`Suite.charts`, suites/charts.py); a suite that declares
none, a plugin's or a pytest-benchmark file's included, gets the default chart: its
headline metric against its first numeric parameter that varies. The built-in ones:
  interconnect-allreduce  all-reduce busbw_gbps against message size, per impl and dtype
  gemm-<dtype>            tflops against the size of square GEMMs (m = n = k), with each
                          run's theoretical peak (the cases' `peak`) as a dashed line
  attention-<dtype>       tflops against sequence length
  storage-bs, storage-qd  storage gbps against block size and against queue depth
  storage-latency         storage lat_p*_us percentiles per case
  objectstore-latency     objectstore ttfb_p*_ms and lat_p*_ms percentiles per case
Only passed cases are drawn; a chart without any is left out. One line per run x impl x
series: the colour tells the impl and series apart, the marker the run, so the same impl
looks alike across runs. `aibench publish` writes the same charts under its html
directory (html/plots/).
"""

from __future__ import annotations

import html
import os
import re
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import matplotlib
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from .compare import names
from .documents import has_suite_params, load_run
from .errors import UsageError
from .fleet import split_by_node
from .results import PASSED, CaseResult, RunDocument
from .safe_write import PLOT_PNG, PLOTS_PAGE, check_target, prepare_directory, write_file
from .suites.base import Suite
from .suites.charts import Chart, PercentileChart

_MARKERS = "osD^vPX*"
_PERCENTILE = re.compile(r"^(?P<family>lat|ttfb)_p(?P<pct>\d+(?:_\d+)?)_(?P<unit>us|ms)$")

# (run index, variant) -> [(x, y)]: one line of a chart; variant is the label without the run
Series = dict[tuple[int, str], list[tuple[float, float]]]
# file stem -> (title, figure)
Charts = dict[str, tuple[str, Figure]]
Passed = list[tuple[int, str, CaseResult]]  # (run index, where, case): _passed


def _passed(docs: list[RunDocument], suite: str) -> Passed:
    """(run index, where, case) of every passed case of `suite`. `where` is the case's
    target when its run measured several (cuda:0, cuda:1, ...), else ''."""
    passed = []
    for i, doc in enumerate(docs):
        several_targets = len({c.target for c in doc.cases}) > 1
        passed += [(i, c.target if several_targets else "", c) for c in doc.cases
                   if c.suite == suite and c.status == PASSED and has_suite_params(c)]
    return passed


def _value(case: CaseResult, name: str) -> float | None:
    """A metric's stored value; None when absent or null (JSON has no NaN: results.py)."""
    metric = case.metrics.get(name)
    return metric.value if metric is not None else None


def _variant(*parts) -> str:
    return " ".join(str(p) for p in parts if p)


def _new_figure(title: str, nrows: int = 1) -> tuple[Figure, list]:
    # A bare Figure, not pyplot: no global state and no display; savefig renders with Agg.
    # Panels are stacked, so that each one's legend (right of it) has room.
    fig = Figure(figsize=(8, 5 * nrows), dpi=100, layout="constrained")
    axes = fig.subplots(nrows, 1, squeeze=False)[:, 0]
    fig.suptitle(title)
    return fig, list(axes)


def _draw_lines(ax, series: Series, runs: list[str]) -> None:
    """Colour by variant, marker by run; log y when the values span more than 100x."""
    variants = list(dict.fromkeys(v for _, v in series))
    colors = matplotlib.colormaps["tab10" if len(variants) <= 10 else "tab20"]
    for (run, variant), points in series.items():
        xs, ys = zip(*sorted(points))
        ax.plot(xs, ys, marker=_MARKERS[run % len(_MARKERS)], color=colors(variants.index(variant) % colors.N),
                label=_variant(runs[run], variant))
    ys = [y for points in series.values() for _, y in points]
    if max(ys) > 100 * min(ys):
        ax.set_yscale("log")
    else:
        ax.set_ylim(bottom=0)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1))


def _add(series: Series, run: int, variant: str, x, y: float | None) -> None:
    # Log axes cannot show zero or negative values, and a null metric has no value at all.
    if y is not None and y > 0:
        series[(run, variant)].append((x, y))


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _param_values(names: list[str], cases: Passed) -> dict[str, list]:
    """Each parameter's distinct values over the cases, in the order they come."""
    return {n: list(dict.fromkeys(repr(c.params[n]) if isinstance(c.params[n], (list, dict)) else c.params[n]
                                  for _, _, c in cases if n in c.params)) for n in names}


def _default_x(values: dict[str, list]) -> str | None:
    """The first numeric parameter that takes several values, else the first numeric one;
    None (the cases by name) when there is none."""
    numeric = [n for n, vs in values.items() if vs and all(_is_number(v) for v in vs)]
    return next((n for n in numeric if len(values[n]) > 1), numeric[0] if numeric else None)


def _headline_metric(cases: Passed) -> str | None:
    """The metric most of the cases are judged by (their headline)."""
    names = Counter(c.headline()[0] for _, _, c in cases if c.headline())
    return names.most_common(1)[0][0] if names else None


def _line_charts(suite: str, params: dict, chart: Chart, docs: list[RunDocument], runs: list[str]) -> Charts:
    """The charts of one Chart declaration (one per `split` value)."""
    cases = [(i, where, c) for i, where, c in _passed(docs, suite) if chart.where is None or chart.where(c.params)]
    metric = chart.metric or _headline_metric(cases)
    if metric is None:
        return {}
    # The suite's declared parameters in their order, then any others its cases carry.
    values = _param_values(list(dict.fromkeys([*params, *(n for _, _, c in cases for n in c.params)])), cases)
    x = chart.x or _default_x(values)
    if chart.series is not None:
        series_params = chart.series
        label = lambda n, v: chart.labels[n](v) if n in chart.labels else str(v)  # noqa: E731
    else:
        # Cases by name on the x axis: one line per impl through them.
        series_params = tuple(n for n, vs in values.items() if x and n != x and len(vs) > 1)
        label = lambda n, v: f"{n}={v}"  # noqa: E731
    names = list(dict.fromkeys(c.case_id for _, _, c in cases))  # the x axis when there is no x parameter
    by_split: dict[Any, Series] = defaultdict(lambda: defaultdict(list))
    peaks: dict[Any, dict[float, list[str]]] = defaultdict(lambda: defaultdict(list))  # split -> peak -> runs
    unit = {}
    for i, where, c in cases:
        key = c.params.get(chart.split) if chart.split else None
        variant = _variant(where, c.impl, *(label(n, c.params.get(n)) for n in series_params))
        _add(by_split[key], i, variant, c.params[x] if x else names.index(c.case_id), _value(c, metric))
        unit.setdefault(key, c.metrics[metric].unit if metric in c.metrics else "")
        if chart.peaks and c.peak and runs[i] not in peaks[key][c.peak["value"]]:
            peaks[key][c.peak["value"]].append(runs[i])
    order = list(chart.split_order)
    charts = {}
    for key in sorted(by_split, key=lambda k: order.index(k) if k in order else len(order)):
        series = by_split[key]
        if not series:
            continue
        stem = (chart.name or suite).format(split=key)
        title = chart.title.format(split=key) or f"{suite}: {metric} against {x or 'case'}"
        y_label = (chart.y_label(key) if callable(chart.y_label) else chart.y_label) or unit[key]
        fig, (ax,) = _new_figure(title)
        for peak, on in peaks[key].items():
            ax.axhline(peak, color="black", linestyle="--", linewidth=1)
            ax.text(0.01, peak, f"peak {peak:.4g} {y_label} ({', '.join(on)})", transform=ax.get_yaxis_transform(),
                    va="bottom", fontsize="small")
        _draw_lines(ax, series, runs)
        _x_axis(ax, chart, x, [px for points in series.values() for px, _ in points], names)
        ax.set_ylabel(y_label)
        charts[stem] = (title, fig)
    return charts


def _x_axis(ax, chart: Chart, x: str | None, xs: list[float], names: list[str]) -> None:
    """A parameter on a base-2 log axis (sizes, counts) or a linear one; case names as categories."""
    if x is None:
        ax.set_xticks(range(len(names)), names, rotation=30, ha="right")
        ax.set_xlabel("case")
        return
    ticks = chart.x_ticks or "{:g}".format
    log = chart.log_x if chart.log_x is not None else min(xs) > 0 and max(xs) >= 4 * min(xs)
    if log:
        ax.set_xscale("log", base=2)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: ticks(v)))
    ax.set_xlabel(chart.x_label or x)


def _percentile_chart(suite: str, chart: PercentileChart, docs: list[RunDocument], runs: list[str]) -> Charts:
    """One panel per latency family (lat, ttfb): each case's percentiles as a line over
    the percentile names (p50, p90, p99, p99.9)."""
    families: dict[str, Series] = defaultdict(lambda: defaultdict(list))  # lat | ttfb -> lines
    family_units: dict[str, str] = {}
    for i, where, c in _passed(docs, suite):
        for name in c.metrics:
            m = _PERCENTILE.match(name)
            if m:
                family_units[m["family"]] = m["unit"]
                _add(families[m["family"]], i, _variant(where, c.impl, c.case_id),
                     float(m["pct"].replace("_", ".")), _value(c, name))
    families = {k: v for k, v in families.items() if v}
    if not families:
        return {}
    fig, axes = _new_figure(chart.title, nrows=len(families))
    for ax, family in zip(axes, sorted(families, reverse=True)):  # ttfb before lat
        # Percentiles are categories, evenly spaced: p99.9 would crowd p99 on a numeric axis.
        pcts = sorted({x for points in families[family].values() for x, _ in points})
        series: Series = {k: [(pcts.index(x), y) for x, y in v] for k, v in families[family].items()}
        _draw_lines(ax, series, runs)
        ax.set_xticks(range(len(pcts)), [f"p{x:g}" for x in pcts])
        ax.set_xlabel("percentile")
        ax.set_ylabel(f"{'time to first byte' if family == 'ttfb' else 'latency'} ({family_units[family]})")
    return {chart.name: (chart.title, fig)}


def _charts(docs: list[RunDocument]) -> Charts:
    """Every chart the runs have data for, by file stem: each suite's declared charts, in
    the order the suites first come in the runs."""
    from .suites import all_suites

    docs = [d for doc in docs for d in split_by_node(doc)]  # as compare: a fleet run is one run per node
    runs = names(docs)  # machine names, made unique (#2) when two runs share one
    known = all_suites()
    charts: Charts = {}
    for suite_name in dict.fromkeys(c.suite for doc in docs for c in doc.cases):
        # A suite not installed here (another machine's plugin, a pytest-benchmark file)
        # gets the default chart from what its cases carry.
        suite = known.get(suite_name, Suite)
        for chart in suite.charts:
            if isinstance(chart, PercentileChart):
                charts.update(_percentile_chart(suite_name, chart, docs, runs))
            else:
                charts.update(_line_charts(suite_name, suite.params, chart, docs, runs))
    return charts


def build_figures(docs: list[RunDocument]) -> dict[str, Figure]:
    """Every chart the runs have data for, by file stem (see the module docstring)."""
    return {stem: fig for stem, (_, fig) in _charts(docs).items()}


def _png_name(stem: str) -> str:
    # Stems hold values from the documents (a dtype): one safe file name in out_dir.
    return re.sub(r"[^A-Za-z0-9._-]+", "_", stem).lstrip(".") + ".png"


def write_plots(docs: list[RunDocument], out_dir: Path, force: bool = False,
                flag: str = "--out") -> dict[Path, str]:
    """Write every chart the runs have data for as out_dir/<stem>.png (by safe_write's
    rules: a PNG already there is replaced only when aibench drew it); the PNGs written,
    each with its title. Every target, index.html (write_index) included, is checked
    before the first is written."""
    import io

    charts = _charts(docs)
    out_dir = Path(out_dir)
    if charts:
        prepare_directory(out_dir, flag)
        for stem in charts:
            check_target(out_dir / _png_name(stem), PLOT_PNG, force, flag)
        check_target(out_dir / "index.html", PLOTS_PAGE, force, flag)
    written = {}
    for stem, (title, fig) in charts.items():
        path = out_dir / _png_name(stem)
        png = io.BytesIO()
        # "tight" keeps the legends placed outside the axes; the Software tag marks the
        # chart as aibench's (safe_write.PLOT_PNG), so a later plot may replace it.
        fig.savefig(png, format="png", bbox_inches="tight", metadata={"Software": "aibench plot"})
        write_file(path, png.getvalue(), PLOT_PNG, force, flag)
        written[path] = title
    return written


def write_index(pngs: dict[Path, str], out_dir: Path, force: bool = False, flag: str = "--out") -> Path:
    """out_dir/index.html: every PNG under its title (write_plots' answer); plain HTML,
    nothing loaded from elsewhere."""
    out_dir = Path(out_dir)
    body = []
    for png, title in pngs.items():
        title = html.escape(title)
        src = html.escape(Path(os.path.relpath(png, out_dir)).as_posix(), quote=True)
        body.append(f'<h2>{title}</h2>\n<p><img src="{src}" alt="{title}"></p>')
    page = out_dir / "index.html"
    write_file(page, "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>aibench plots</title></head>\n"
               "<body>\n<h1>aibench plots</h1>\n" + "\n".join(body) + "\n</body></html>\n", PLOTS_PAGE, force, flag)
    return page


def cmd_plot(args) -> int:
    docs = [load_run(p) for p in args.runs]
    try:
        pngs = write_plots(docs, args.out, args.force)
        page = write_index(pngs, args.out, args.force) if pngs else None
    except OSError as e:
        raise UsageError(f"cannot write plots to {args.out}: {e.strerror or e}") from None
    if page is None:
        raise UsageError("nothing to plot: no passed case in the given run(s) has a figure a chart shows")
    for path in [*pngs, page]:
        print(path)
    return 0


def add_parser(sub) -> None:
    p_plot = sub.add_parser("plot", help="PNG charts of run documents and a page showing them")
    p_plot.add_argument("runs", nargs="+", help="run documents")
    p_plot.add_argument("--out", type=Path, default=Path("plots"), metavar="DIR",
                        help="where the PNGs and index.html go (default plots/)")
    p_plot.add_argument("--force", action="store_true",
                        help="let --out replace regular files of yours that aibench did not draw")
