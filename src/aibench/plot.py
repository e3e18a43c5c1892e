"""`aibench plot RUN [RUN ...]`: PNG charts of run documents, and a page that shows them.

Charts (each skipped when no run has the cases it needs; only passed cases are drawn):
  interconnect-allreduce  all-reduce busbw_gbps against message size, per impl and dtype
  gemm-<dtype>            tflops against the size of square GEMMs (m = n = k), with each
                          run's theoretical peak (the cases' `peak`) as a dashed line
  storage-bs, storage-qd  storage gbps against block size and against queue depth
  storage-latency         storage lat_p*_us percentiles per case
  objectstore-latency     objectstore ttfb_p*_ms and lat_p*_ms percentiles per case
One line per run x impl x (dtype or case): the colour tells the impl and case apart, the
marker the run, so the same impl looks alike across runs. `aibench publish` writes the
same charts under its html directory (html/plots/).
"""

from __future__ import annotations

import html
import os
import re
from collections import defaultdict
from pathlib import Path

import matplotlib
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from . import units
from .dtypes import rate_unit
from .compare import names
from .documents import has_suite_params, load_run
from .dtypes import FORMATS
from .errors import UsageError
from .fleet import split_by_node
from .results import PASSED, CaseResult, RunDocument
from .safe_write import PLOT_PNG, PLOTS_PAGE, check_target, prepare_directory, write_file

_MARKERS = "osD^vPX*"
_DTYPES = tuple(d for d in FORMATS if d != "int32")  # the dtype table's order (widest first), for the gemm charts
_PERCENTILE = re.compile(r"^(?P<family>lat|ttfb)_p(?P<pct>\d+(?:_\d+)?)_(?P<unit>us|ms)$")
_TITLES = {
    "interconnect-allreduce": "All-reduce bus bandwidth against message size",
    "storage-bs": "Storage throughput against block size",
    "storage-qd": "Storage throughput against queue depth",
    "storage-latency": "Storage read latency percentiles",
    "objectstore-latency": "Object store GET latency percentiles",
}

# (run index, variant) -> [(x, y)]: one line of a chart; variant is the label without the run
Series = dict[tuple[int, str], list[tuple[float, float]]]


def chart_title(stem: str) -> str:
    """The title of the chart written as `<stem>.png`."""
    if stem.startswith("gemm-"):
        return f"GEMM {stem[5:]}: TFLOP/s against square size (m = n = k)"
    return _TITLES.get(stem, stem)


def size_label(nbytes: float) -> str:
    """Bytes in binary units as the axis shows them: 8, 4K, 1.5M, 2G."""
    return units.size_label(nbytes, exact=False)


def _passed(docs: list[RunDocument], suite: str):
    """(run index, where, case) of every passed case of `suite`. `where` is the case's
    target when its run measured several (cuda:0, cuda:1, ...), else ''."""
    for i, doc in enumerate(docs):
        several_targets = len({c.target for c in doc.cases}) > 1
        for c in doc.cases:
            if c.suite == suite and c.status == PASSED and has_suite_params(c):
                yield i, c.target if several_targets else "", c


def _value(case: CaseResult, name: str) -> float | None:
    """A metric's stored value; None when absent or null (JSON has no NaN: results.py)."""
    metric = case.metrics.get(name)
    return metric.value if metric is not None else None


def _variant(*parts) -> str:
    return " ".join(str(p) for p in parts if p)


def _new_figure(stem: str, nrows: int = 1) -> tuple[Figure, list]:
    # A bare Figure, not pyplot: no global state and no display; savefig renders with Agg.
    # Panels are stacked, so that each one's legend (right of it) has room.
    fig = Figure(figsize=(8, 5 * nrows), dpi=100, layout="constrained")
    axes = fig.subplots(nrows, 1, squeeze=False)[:, 0]
    fig.suptitle(chart_title(stem))
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


def _log2_axis(ax, label: str, formatter) -> None:
    ax.set_xscale("log", base=2)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: formatter(x)))
    ax.set_xlabel(label)


def _add(series: Series, run: int, variant: str, x, y: float | None) -> None:
    # Log axes cannot show zero or negative values, and a null metric has no value at all.
    if y is not None and y > 0:
        series[(run, variant)].append((x, y))


def _allreduce(docs: list[RunDocument], runs: list[str]) -> dict[str, Figure]:
    series: Series = defaultdict(list)
    for i, where, c in _passed(docs, "interconnect"):
        p = c.params
        # The p2p link matrix (pattern p2p) is not an all-reduce: its gbps is a link's rate.
        if p.get("pattern") == "allreduce":
            _add(series, i, _variant(where, c.impl, p["dtype"], "in-place" if p.get("inplace") else ""),
                 p["size"], _value(c, "busbw_gbps"))
    if not series:
        return {}
    fig, (ax,) = _new_figure("interconnect-allreduce")
    _draw_lines(ax, series, runs)
    _log2_axis(ax, "message size (bytes)", size_label)
    ax.set_ylabel("busbw (GB/s)")
    return {"interconnect-allreduce": fig}


def _gemm(docs: list[RunDocument], runs: list[str]) -> dict[str, Figure]:
    by_dtype: dict[str, Series] = defaultdict(lambda: defaultdict(list))
    peaks: dict[str, dict[float, list[str]]] = defaultdict(lambda: defaultdict(list))  # dtype -> peak -> runs
    for i, where, c in _passed(docs, "gemm"):
        p = c.params
        if not p["m"] == p["n"] == p["k"]:
            continue  # transformer shapes and m-sweeps: not on a square-size axis
        _add(by_dtype[p["dtype"]], i, _variant(where, c.impl), p["m"], _value(c, "tflops"))
        if c.peak and runs[i] not in peaks[p["dtype"]][c.peak["value"]]:
            peaks[p["dtype"]][c.peak["value"]].append(runs[i])
    figures = {}
    for dtype in sorted(by_dtype, key=lambda d: _DTYPES.index(d) if d in _DTYPES else len(_DTYPES)):
        series = by_dtype[dtype]
        if not series:
            continue
        stem = f"gemm-{dtype}"
        fig, (ax,) = _new_figure(stem)
        unit = rate_unit(dtype)
        for peak, on in peaks[dtype].items():
            ax.axhline(peak, color="black", linestyle="--", linewidth=1)
            ax.text(0.01, peak, f"peak {peak:.4g} {unit} ({', '.join(on)})", transform=ax.get_yaxis_transform(),
                    va="bottom", fontsize="small")
        _draw_lines(ax, series, runs)
        _log2_axis(ax, "m = n = k", lambda x: f"{x:g}")
        ax.set_ylabel(unit)
        figures[stem] = fig
    return figures


def _storage(docs: list[RunDocument], runs: list[str]) -> dict[str, Figure]:
    """gbps against block size (the other parameters fixed per line), and against qd."""
    by_bs: Series = defaultdict(list)
    by_qd: Series = defaultdict(list)
    for i, where, c in _passed(docs, "storage"):
        p = c.params
        common = (where, c.impl, p["pattern"])
        tail = (f"t{p['threads']}", "" if p.get("direct", 1) else "buffered")
        gbps = _value(c, "gbps")
        _add(by_bs, i, _variant(*common, f"qd{p['qd']}", *tail), p["bs"], gbps)
        _add(by_qd, i, _variant(*common, size_label(p["bs"]), *tail), p["qd"], gbps)
    figures = {}
    for stem, series, xlabel, formatter in (("storage-bs", by_bs, "block size (bytes)", size_label),
                                            ("storage-qd", by_qd, "queue depth", lambda x: f"{x:g}")):
        if series:
            fig, (ax,) = _new_figure(stem)
            _draw_lines(ax, series, runs)
            _log2_axis(ax, xlabel, formatter)
            ax.set_ylabel("GB/s")
            figures[stem] = fig
    return figures


def _percentiles(docs: list[RunDocument], runs: list[str], suite: str, stem: str) -> dict[str, Figure]:
    """One panel per latency family (lat, ttfb): each case's percentiles as a line over
    the percentile names (p50, p90, p99, p99.9)."""
    families: dict[str, Series] = defaultdict(lambda: defaultdict(list))  # lat | ttfb -> lines
    units: dict[str, str] = {}
    for i, where, c in _passed(docs, suite):
        for name in c.metrics:
            m = _PERCENTILE.match(name)
            if m:
                units[m["family"]] = m["unit"]
                _add(families[m["family"]], i, _variant(where, c.impl, c.case_id),
                     float(m["pct"].replace("_", ".")), _value(c, name))
    families = {k: v for k, v in families.items() if v}
    if not families:
        return {}
    fig, axes = _new_figure(stem, nrows=len(families))
    for ax, family in zip(axes, sorted(families, reverse=True)):  # ttfb before lat
        # Percentiles are categories, evenly spaced: p99.9 would crowd p99 on a numeric axis.
        pcts = sorted({x for points in families[family].values() for x, _ in points})
        series: Series = {k: [(pcts.index(x), y) for x, y in v] for k, v in families[family].items()}
        _draw_lines(ax, series, runs)
        ax.set_xticks(range(len(pcts)), [f"p{x:g}" for x in pcts])
        ax.set_xlabel("percentile")
        ax.set_ylabel(f"{'time to first byte' if family == 'ttfb' else 'latency'} ({units[family]})")
    return {stem: fig}


def build_figures(docs: list[RunDocument]) -> dict[str, Figure]:
    """Every chart the runs have data for, by file stem (see the module docstring)."""
    docs = [d for doc in docs for d in split_by_node(doc)]  # as compare: a fleet run is one run per node
    runs = names(docs)  # machine names, made unique (#2) when two runs share one
    return {**_allreduce(docs, runs), **_gemm(docs, runs), **_storage(docs, runs),
            **_percentiles(docs, runs, "storage", "storage-latency"),
            **_percentiles(docs, runs, "objectstore", "objectstore-latency")}


def _png_name(stem: str) -> str:
    # Stems hold values from the documents (a dtype): one safe file name in out_dir.
    return re.sub(r"[^A-Za-z0-9._-]+", "_", stem).lstrip(".") + ".png"


def write_plots(docs: list[RunDocument], out_dir: Path, force: bool = False, flag: str = "--out") -> list[Path]:
    """Write every chart the runs have data for as out_dir/<stem>.png (by safe_write's
    rules: a PNG already there is replaced only when aibench drew it); the PNGs written.
    Every target, index.html (write_index) included, is checked before the first is written."""
    import io

    figures = build_figures(docs)
    out_dir = Path(out_dir)
    if figures:
        prepare_directory(out_dir, flag)
        for stem in figures:
            check_target(out_dir / _png_name(stem), PLOT_PNG, force, flag)
        check_target(out_dir / "index.html", PLOTS_PAGE, force, flag)
    written = []
    for stem, fig in figures.items():
        path = out_dir / _png_name(stem)
        png = io.BytesIO()
        # "tight" keeps the legends placed outside the axes; the Software tag marks the
        # chart as aibench's (safe_write.PLOT_PNG), so a later plot may replace it.
        fig.savefig(png, format="png", bbox_inches="tight", metadata={"Software": "aibench plot"})
        write_file(path, png.getvalue(), PLOT_PNG, force, flag)
        written.append(path)
    return written


def write_index(pngs: list[Path], out_dir: Path, force: bool = False, flag: str = "--out") -> Path:
    """out_dir/index.html: every PNG under its title; plain HTML, nothing loaded from elsewhere."""
    out_dir = Path(out_dir)
    body = []
    for png in pngs:
        title = html.escape(chart_title(Path(png).stem))
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
        raise UsageError("nothing to plot: no passed interconnect all-reduce, square gemm, storage or "
                         "objectstore cases in the given run(s)")
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
