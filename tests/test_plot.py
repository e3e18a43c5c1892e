"""`aibench plot` and the charts of `aibench publish`: the right data on the right axes,
real PNGs with something drawn on them, one-line errors."""

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imread

from aibench.cli import main
from aibench.documents import load_run
from aibench.fingerprint import git_commit
from aibench.plot import build_figures, write_index, write_plots
from aibench.results import FAILED, PASSED, SKIPPED, CaseResult, Metric, RunDocument
from aibench.suites.charts import size_ticks

REPO = Path(__file__).resolve().parents[1]
CPU_REF = REPO / "src" / "aibench" / "reference" / "cpu-2core-epyc-zen4-quick.json"
GPU_REF = REPO / "src" / "aibench" / "reference" / "nvidia-h200-cuda-quick.json"
CPU = "cpu-2core-epyc-zen4"


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Path:
    """A real run made here: two square GEMMs of aibench's own kernel (about a second)."""
    out = tmp_path_factory.mktemp("run") / "tiny.json"
    code = main(["run", "--suite", "gemm", "--impl", "aibench", "--param", "m=64", "--param", "n=64",
                 "--param", "k=64", "--param", "dtype=fp32,fp64", "--time-budget", "0.05", "--no-asv",
                 "--machine", "tiny", "--output", str(out), "--json"])
    assert code == 0
    return out


def assert_drawn_png(path: Path) -> None:
    """A PNG file whose image is not blank: several colours, not one flat background."""
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", path
    img = imread(path)
    assert img.ndim == 3 and img.shape[0] > 200 and img.shape[1] > 300, img.shape
    rgb = img[..., :3]
    assert rgb.std() > 0.05, f"{path.name} looks blank"
    colours = np.round(rgb * 255).astype(np.uint32) @ np.array([1 << 16, 1 << 8, 1], dtype=np.uint32)
    assert len(np.unique(colours)) > 20, f"{path.name} has almost no colours"


def lines_by_label(ax) -> dict:
    return {line.get_label(): line for line in ax.get_lines() if not line.get_label().startswith("_")}


def test_reference_runs_give_every_chart_as_a_drawn_png(tmp_path):
    docs = [load_run(CPU_REF), load_run(GPU_REF)]
    pngs = write_plots(docs, tmp_path / "plots")
    # Each suite's declared charts, the suites in the order the runs first have them.
    assert [p.name for p in pngs] == [
        "attention-fp32.png", "attention-bf16.png",
        *[f"gemm-{d}.png" for d in ("fp64", "fp32", "tf32", "bf16", "fp16", "fp8", "int8")],
        "interconnect-allreduce.png", "memory.png", "objectstore-latency.png",
        "storage-bs.png", "storage-qd.png", "storage-latency.png"]
    for p in pngs:
        assert_drawn_png(p)
    page = write_index(pngs, tmp_path / "plots")
    assert page == tmp_path / "plots" / "index.html"
    text = page.read_text()
    for p in pngs:
        assert f'<img src="{p.name}"' in text
    assert "<h2>All-reduce bus bandwidth against message size</h2>" in text
    assert "<h2>GEMM fp32: TFLOP/s against square size (m = n = k)</h2>" in text
    assert "http" not in text  # nothing loaded from elsewhere


def _run_of(cases: list[CaseResult]) -> RunDocument:
    return dataclasses.replace(load_run(CPU_REF), cases=cases)


def _case(suite: str, params: dict, metrics: dict, impl: str = "numpy") -> CaseResult:
    return CaseResult(suite=suite, case_id="-".join(map(str, params.values())), params=params, target="cpu",
                      impl=impl, status=PASSED, metrics=metrics)


def test_a_suite_that_declares_no_chart_gets_its_headline_against_the_parameter_it_sweeps():
    """A plugin suite (one not installed here, as on the machine that plots another's run):
    the default chart, from what its cases carry."""
    cases = [_case("stream", {"kernel": k, "size": size, "threads": 4},
                   {"time_us": Metric(size / gbps / 1e3, "us", False), "gbps": Metric(gbps, "GB/s", True)})
             for k, rates in (("copy", (20.0, 18.0, 12.0)), ("triad", (22.0, 19.0, 13.0)))
             for size, gbps in zip((1 << 20, 16 << 20, 256 << 20), rates)]
    figs = build_figures([_run_of(cases)])
    assert list(figs) == ["stream"]
    ax = figs["stream"].axes[0]
    lines = lines_by_label(ax)
    # threads takes one value: not part of the label; the headline (gbps), not time_us.
    assert set(lines) == {f"{CPU} numpy kernel=copy", f"{CPU} numpy kernel=triad"}
    assert list(lines[f"{CPU} numpy kernel=triad"].get_xdata()) == [1 << 20, 16 << 20, 256 << 20]
    assert list(lines[f"{CPU} numpy kernel=triad"].get_ydata()) == [22.0, 19.0, 13.0]
    assert ax.get_xlabel() == "size" and ax.get_ylabel() == "GB/s" and ax.get_xscale() == "log"


def test_a_suite_without_numeric_parameters_gets_its_cases_by_name(tmp_path):
    cases = [_case("pytest:bench", {"test": f"bench.py::test_{name}"}, {"ops_per_s": Metric(rate, "ops/s", True)},
                   impl="pytest-benchmark") for name, rate in (("load", 50.0), ("decode", 80.0))]
    ax = build_figures([_run_of(cases)])["pytest:bench"].axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["bench.py::test_load", "bench.py::test_decode"]
    assert list(lines_by_label(ax)[f"{CPU} pytest-benchmark"].get_ydata()) == [50.0, 80.0]
    # The file name is made safe; the title is the default one.
    assert write_plots([_run_of(cases)], tmp_path) == {tmp_path / "pytest_bench.png": "pytest:bench: ops_per_s against case"}


def test_allreduce_chart_plots_stored_busbw_against_size_and_leaves_p2p_out():
    raw = json.loads(CPU_REF.read_text())
    doc = load_run(CPU_REF)
    # A p2p case is not an all-reduce, even with a metric of the all-reduce's name.
    p2p = next(c for c in doc.cases if c.suite == "interconnect" and c.params["pattern"] == "p2p")
    p2p.metrics["busbw_gbps"] = Metric(123.0, "GB/s", True)
    ax = build_figures([doc])["interconnect-allreduce"].axes[0]
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    fmt = ax.xaxis.get_major_formatter()
    assert [fmt(x, 0) for x in (8, 4096, 1 << 20, 64 << 20)] == ["8", "4K", "1M", "64M"]
    assert size_ticks(3 << 29) == "1.5G"
    lines = lines_by_label(ax)
    allreduce = [c for c in raw["cases"] if c["suite"] == "interconnect" and c["params"]["pattern"] == "allreduce"]
    assert set(lines) == {f"{CPU} {c['impl']} fp32" for c in allreduce} and len(lines) == 7
    want = sorted((c["params"]["size"], c["metrics"]["busbw_gbps"]["value"]) for c in allreduce if c["impl"] == "mpi")
    mpi = lines[f"{CPU} mpi fp32"]
    assert list(zip(mpi.get_xdata(), mpi.get_ydata())) == want and len(want) == 24
    assert all(123.0 not in line.get_ydata() for line in lines.values())


def _raw_cases(path, suite: str, impl: str, **params) -> list[dict]:
    """The reference document's cases as stored (read as JSON, not through aibench)."""
    return [c for c in json.loads(path.read_text())["cases"] if c["suite"] == suite and c["impl"] == impl
            and all(c["params"].get(k) == v for k, v in params.items())]


def test_gemm_chart_has_the_peak_of_each_run_and_only_passed_impls():
    figs = build_figures([load_run(CPU_REF), load_run(GPU_REF)])
    ax = figs["gemm-fp32"].axes[0]
    peaks = sorted(line.get_ydata()[0] for line in ax.get_lines() if line.get_linestyle() == "--")
    blas = sorted(_raw_cases(CPU_REF, "gemm", "blas", dtype="fp32"), key=lambda c: c["params"]["m"])
    assert peaks == [pytest.approx(blas[0]["peak"]["value"]), 67.0]
    lines = lines_by_label(ax)
    assert list(lines[f"{CPU} aibench"].get_xdata()) == [512, 1024, 2048]
    assert list(lines[f"{CPU} blas"].get_ydata()) == [c["metrics"]["tflops"]["value"] for c in blas]
    assert len(blas) == 3
    assert list(lines["nvidia-h200 cublas"].get_xdata()) == [4096, 8192]
    # The CPU's 0.2 and the H200's 51 TFLOP/s: more than 100x apart, so a log axis.
    assert ax.get_yscale() == "log"
    # blas bf16 was skipped on the CPU, cupy bf16 on the H200: no line for either.
    assert set(lines_by_label(figs["gemm-bf16"].axes[0])) == {
        f"{CPU} aibench", f"{CPU} torch", "nvidia-h200 aibench", "nvidia-h200 torch", "nvidia-h200 cublas"}


def test_storage_and_latency_charts():
    figs = build_figures([load_run(CPU_REF)])
    bs = lines_by_label(figs["storage-bs"].axes[0])
    assert set(bs) == {f"{CPU} {impl} {pattern} t1" for impl in ("aibench", "fio")
                       for pattern in ("seq qd32", "rand qd64")}
    assert list(bs[f"{CPU} fio seq qd32 t1"].get_xdata()) == [1 << 20]
    fio_seq = _raw_cases(CPU_REF, "storage", "fio", pattern="seq")
    assert len(fio_seq) == 1
    assert list(bs[f"{CPU} fio seq qd32 t1"].get_ydata()) == [fio_seq[0]["metrics"]["gbps"]["value"]]
    qd = lines_by_label(figs["storage-qd"].axes[0])
    assert list(qd[f"{CPU} aibench rand 4K t1"].get_xdata()) == [64]

    ax = figs["storage-latency"].axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["p50", "p90", "p99", "p99.9"]
    lat = lines_by_label(ax)[f"{CPU} fio seq-1M-qd32-t1"]
    assert list(lat.get_ydata()) == [fio_seq[0]["metrics"][f"lat_{p}_us"]["value"] for p in ("p50", "p90", "p99", "p99_9")]
    assert ax.get_ylabel() == "latency (us)"

    ttfb, whole = figs["objectstore-latency"].axes
    assert ttfb.get_ylabel() == "time to first byte (ms)" and whole.get_ylabel() == "latency (ms)"
    small = _raw_cases(CPU_REF, "objectstore", "obstore", workload="small")
    assert len(small) == 1
    assert list(lines_by_label(ttfb)[f"{CPU} obstore small-4K-c16"].get_ydata()) == [
        small[0]["metrics"][f"ttfb_{p}_ms"]["value"] for p in ("p50", "p90", "p99")]
    assert len(lines_by_label(whole)) == 9


def test_failed_and_skipped_cases_are_not_plotted(tmp_path):
    doc = load_run(CPU_REF)
    failed = next(c for c in doc.cases if c.case_id == "1024x1024x1024-fp32" and c.impl == "aibench")
    failed.status = FAILED
    line = lines_by_label(build_figures([doc])["gemm-fp32"].axes[0])[f"{CPU} aibench"]
    assert list(line.get_xdata()) == [512, 2048]

    for c in doc.cases:
        c.status = FAILED if c.status == PASSED else SKIPPED
    assert write_plots([doc], tmp_path / "none") == {}
    assert not (tmp_path / "none").exists()


def test_runs_of_one_machine_are_told_apart():
    doc = load_run(CPU_REF)
    twin = dataclasses.replace(doc, cases=[dataclasses.replace(c) for c in doc.cases])
    lines = lines_by_label(build_figures([doc, twin])["gemm-fp64"].axes[0])
    a, b = lines[f"{CPU}#1 blas"], lines[f"{CPU}#2 blas"]
    assert a.get_marker() != b.get_marker() and a.get_color() == b.get_color()


def test_gpus_of_one_run_are_told_apart():
    doc = load_run(GPU_REF)
    doc.cases = [dataclasses.replace(c, target=t) for c in doc.cases for t in ("cuda:0", "cuda:1")]
    lines = lines_by_label(build_figures([doc])["gemm-fp16"].axes[0])
    assert {"nvidia-h200 cuda:0 cublas", "nvidia-h200 cuda:1 cublas"} <= set(lines)


def test_plot_command_on_a_run_made_here(tiny_run, tmp_path, capsys):
    out = tmp_path / "charts"
    assert main(["plot", str(tiny_run), "--out", str(out)]) == 0
    printed = capsys.readouterr().out.split()
    assert printed == [str(out / "gemm-fp64.png"), str(out / "gemm-fp32.png"), str(out / "index.html")]
    for p in printed[:2]:
        assert_drawn_png(Path(p))
    doc = load_run(tiny_run)
    ax = build_figures([doc])["gemm-fp32"].axes[0]
    measured = next(c for c in doc.cases if c.params["dtype"] == "fp32")
    assert list(lines_by_label(ax)["tiny aibench"].get_ydata()) == [measured.metrics["tflops"].value]
    assert [line.get_ydata()[0] for line in ax.get_lines() if line.get_linestyle() == "--"] == [measured.peak["value"]]


def test_missing_file_is_a_one_line_usage_error(tmp_path):
    p = subprocess.run([sys.executable, "-m", "aibench.cli", "plot", str(tmp_path / "nope.json")],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 2
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and "no such run document" in lines[0], p.stderr


def test_bad_input_is_a_one_line_usage_error(tmp_path, capsys):
    not_a_run = tmp_path / "other.json"
    not_a_run.write_text('{"hello": 1}')
    none_passed = tmp_path / "skipped.json"
    raw = json.loads(CPU_REF.read_text())
    raw["cases"] = [c for c in raw["cases"] if c["status"] != "passed"]
    assert raw["cases"]
    none_passed.write_text(json.dumps(raw))
    for args, message in ([str(not_a_run)], "is not a readable aibench run document"), \
                         ([str(none_passed)], "nothing to plot"), \
                         ([], "the following arguments are required: runs"):
        assert main(["plot", *args, "--out", str(tmp_path / "out")]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message in err[0], err
    assert not (tmp_path / "out").exists()


@pytest.mark.skipif(git_commit() is None, reason="aibench not built from a git checkout")
def test_publish_writes_the_plots_page(tiny_run, tmp_path, capsys):
    html = tmp_path / "html"
    assert main(["publish", str(tiny_run), "--repo", str(REPO), "--results", str(tmp_path / "results"),
                 "--html", str(html)]) == 0
    assert f"plots: {html / 'plots' / 'index.html'}" in capsys.readouterr().out
    assert (html / "index.html").exists()  # asv's pages, then the plots beside them
    assert sorted(p.name for p in (html / "plots").iterdir()) == ["gemm-fp32.png", "gemm-fp64.png", "index.html"]
    assert_drawn_png(html / "plots" / "gemm-fp32.png")
