"""`aibench run` results land in asv's results tree and `asv publish` builds pages from them."""

import io
import json
import shutil
from html.parser import HTMLParser
from pathlib import Path

import asv
import pytest

from aibench import publish
from aibench.asv_export import benchmark_dicts
from aibench.cli import main
from aibench.fingerprint import git_commit
from aibench.suites import get_suite

REPO = Path(__file__).resolve().parents[1]


def loaded_files(page: str) -> list[str]:
    """What a page's <script src> and <link rel=stylesheet href> tags load."""
    class Tags(HTMLParser):
        def __init__(self):
            super().__init__()
            self.urls = []

        def handle_starttag(self, tag, attrs):
            a = dict(attrs)
            if tag == "script" and a.get("src"):
                self.urls.append(a["src"])
            elif tag == "link" and a.get("rel") == "stylesheet":
                self.urls.append(a["href"])

    tags = Tags()
    tags.feed(page)
    return tags.urls


def assert_self_contained(html: Path):
    """Every script and stylesheet of asv's index.html is a file in the published tree:
    fails when a newer asv asks for a CDN file that aibench/www_vendor lacks."""
    urls = loaded_files((html / "index.html").read_text())
    assert len(urls) > 10, urls
    remote = [u for u in urls if u.startswith(("http:", "https:", "//"))]
    assert not remote, f"still loaded from the internet (add them to aibench/www_vendor): {remote}"
    assert [u for u in urls if not (html / u).is_file()] == []


def test_asv_template_made_self_contained_with_a_plots_link(tmp_path):
    """On asv's own index.html template: CDN files become local copies, and the nav
    links aibench's plots page only where there is one."""
    shutil.copytree(Path(asv.__file__).parent / "www", tmp_path / "html")
    assert publish._make_pages_self_contained(tmp_path / "html") == []
    assert_self_contained(tmp_path / "html")
    assert "plots/index.html" not in (tmp_path / "html" / "index.html").read_text()

    shutil.copytree(Path(asv.__file__).parent / "www", tmp_path / "html2")
    (tmp_path / "html2" / "plots").mkdir()
    (tmp_path / "html2" / "plots" / "index.html").write_text("<html></html>")
    publish._make_pages_self_contained(tmp_path / "html2")
    assert '<a href="plots/index.html">aibench plots</a>' in (tmp_path / "html2" / "index.html").read_text()


def test_exported_benchmarks_match_asv_discovery_of_suites_dir():
    """suites/benchmarks.py, discovered by asv's own runner, defines exactly the benchmarks
    that aibench writes to benchmarks.json (names, params, units, versions)."""
    from asv_runner.discovery import list_benchmarks

    buf = io.StringIO()
    list_benchmarks(str(REPO / "suites"), buf)
    discovered = {b["name"]: b for b in json.loads(buf.getvalue())}
    for suite in ("gemm", "attention", "power"):
        for spec in get_suite(suite).asv_specs():
            for exported in benchmark_dicts(spec, suite):
                found = discovered[exported["name"]]
                for key in ("type", "unit", "version", "param_names", "params"):
                    assert found[key] == exported[key], key


@pytest.mark.skipif(git_commit() is None, reason="aibench not built from a git checkout")
def test_asv_publish_builds_pages_from_an_aibench_run(tmp_path):
    results = tmp_path / "results"
    for machine in ("node-a", "node-b"):
        code = main(["run", "--param", "m=512", "--param", "n=512", "--param", "k=512", "--param", "dtype=fp32",
                     "--time-budget", "0.05", "--machine", machine, "--output", str(tmp_path / f"{machine}.json"),
                     "--asv-results", str(results)])
        assert code == 0
        assert (results / machine / "machine.json").exists()
    code = main(["publish", str(tmp_path / "node-a.json"), str(tmp_path / "node-b.json"), "--repo", str(REPO),
                 "--results", str(results), "--html", str(tmp_path / "html")])
    assert code == 0
    index = json.loads((tmp_path / "html" / "index.json").read_text())
    assert "gemm.GemmCpu.track_tflops" in index["benchmarks"]
    assert set(index["machines"]) == {"node-a", "node-b"}
    assert_self_contained(tmp_path / "html")
    graphs = list((tmp_path / "html" / "graphs").rglob("gemm.GemmCpu.track_tflops.json"))
    assert graphs, "no graph of the gemm benchmark"
    # Each machine's graph holds the TFLOP/s its run document measured for every impl of
    # the 512^3 fp32 case.
    from aibench.results import RunDocument

    def numbers(x):
        if isinstance(x, (int, float)) and not isinstance(x, bool):
            yield float(x)
        elif isinstance(x, list):
            for y in x:
                yield from numbers(y)

    # asv plots the median of the exported per-sample figures, which for an even count of
    # samples is not exactly FLOPs / median time: each plotted figure must lie within the
    # rate interval of the case it came from (FLOPs over the median time's 95% interval).
    for machine in ("node-a", "node-b"):
        plotted = [v for g in graphs if f"machine-{machine}" in str(g) for v in numbers(json.loads(g.read_text()))]
        cases = [c for c in RunDocument.load(tmp_path / f"{machine}.json").cases if c.status == "passed"]
        assert cases
        for c in cases:
            value, summary = c.metrics["tflops"].value, c.stats.summary
            low = value * summary.median / summary.ci95_high
            high = value * summary.median / summary.ci95_low
            assert any(low * (1 - 1e-9) <= v <= high * (1 + 1e-9) for v in plotted), (machine, value, low, high, plotted)


def _gemm_case(node, value, size=512, impl="aibench"):
    from aibench.results import CaseResult, Metric, Samples, Validation

    t = 2 * size**3 / value / 1e12
    return CaseResult(suite="gemm", case_id=f"{size}x{size}x{size}-fp32",
                      params={"m": size, "n": size, "k": size, "dtype": "fp32"},
                      target="cpu", impl=impl, status="passed", node=node,
                      metrics={"tflops": Metric(value, "TFLOP/s", True), "time_us": Metric(t * 1e6, "us", False)},
                      stats=Samples([t * 0.99, t, t * 1.01]), validation=Validation("passed", 0.0, 1e-5))


def _asv_value(results_dir, machine, bench, point):
    """The value asv stored for `bench` at the parameter point (a tuple of values)."""
    from asv.results import Results

    files = [f for f in (results_dir / machine).glob("*.json") if f.name != "machine.json"]
    assert len(files) == 1, files
    res = Results.load(str(files[0]))
    params = res.get_result_params(bench)
    values = res.get_result_value(bench, params)
    combos = __import__("itertools").product(*params)
    return dict(zip([tuple(c) for c in combos], values))[tuple(repr(v) for v in point)]


def test_asv_results_hold_the_run_documents_figures(tmp_path):
    """Round trip: the value in asv's results file is the run document's figure (time in
    seconds for track_time), two runs of one commit merge, and a fleet document becomes
    one asv machine per node."""
    from aibench.asv_export import export_run
    from aibench.results import RunDocument

    commit = "a" * 40

    def doc(machine, cases, fleet=None):
        return RunDocument(command=["aibench"], machine=machine, tier="quick", targets=["cpu"],
                           system={"cpu": {"model": "x"}}, aibench={"version": "0", "commit": commit},
                           cases=cases, fleet=fleet)

    results = tmp_path / "results"
    first = doc("n1", [_gemm_case(None, 0.25)])
    export_run(first, results, REPO)
    export_run(doc("n1", [_gemm_case(None, 0.5, size=1024)]), results, REPO)
    point = ("512x512x512", "fp32", "aibench")
    assert _asv_value(results, "n1", "gemm.GemmCpu.track_tflops", point) == pytest.approx(0.25)
    time_us = first.cases[0].metrics["time_us"].value
    assert _asv_value(results, "n1", "gemm.GemmCpu.track_time", point) == pytest.approx(time_us * 1e-6)
    assert _asv_value(results, "n1", "gemm.GemmCpu.track_tflops", ("1024x1024x1024", "fp32", "aibench")) == \
        pytest.approx(0.5)  # the second run of the commit merged, the first kept

    from aibench.fleet import split_by_node

    fleet = doc("fleet", [_gemm_case("n2", 0.3), _gemm_case("n3", 0.6)],
                fleet={"nodes": [{"node": "n2", "host": "h2", "rank": 0, "local_rank": 0, "system": {}},
                                 {"node": "n3", "host": "h3", "rank": 1, "local_rank": 0, "system": {}}],
                       "concurrency": "every node at once"})
    for node_doc in split_by_node(fleet):
        export_run(node_doc, results, REPO)
    assert _asv_value(results, "n2", "gemm.GemmCpu.track_tflops", point) == pytest.approx(0.3)
    assert _asv_value(results, "n3", "gemm.GemmCpu.track_tflops", point) == pytest.approx(0.6)


def test_asv_samples_are_the_measured_figures_in_order(tmp_path):
    """Each exported per-sample value is the figure of that measured sample, in the order
    taken: a throughput is value x median / t (a faster sample is higher), a time per
    operation value x t / median. Skewed samples (not symmetric about the median) tell a
    sample inverted about the median apart from the measured one."""
    from asv.results import Results

    from aibench.asv_export import export_run
    from aibench.results import CaseResult, Metric, RunDocument, Samples, Validation

    times = [2.0e-3, 1.0e-3, 1.1e-3, 4.0e-3, 1.2e-3]  # median 1.2 ms
    flops = 2 * 512**3
    case = CaseResult(suite="gemm", case_id="512x512x512-fp32", params={"m": 512, "n": 512, "k": 512, "dtype": "fp32"},
                      target="cpu", impl="aibench", status="passed",
                      metrics={"tflops": Metric(flops / 1.2e-3 / 1e12, "TFLOP/s", True),
                               "time_us": Metric(1.2e-3 * 1e6, "us", False)},
                      stats=Samples(times), validation=Validation("passed", 0.0, 1e-5))
    doc = RunDocument(command=["aibench"], machine="n1", tier="quick", targets=["cpu"], system={"cpu": {"model": "x"}},
                      aibench={"version": "0", "commit": "b" * 40}, cases=[case])
    results = tmp_path / "results"
    export_run(doc, results, REPO)
    (path,) = [f for f in (results / "n1").glob("*.json") if f.name != "machine.json"]
    res = Results.load(str(path))
    point = ("'512x512x512'", "'fp32'", "'aibench'")

    def samples(bench):
        params = res.get_result_params(bench)
        combos = [tuple(c) for c in __import__("itertools").product(*params)]
        return res.get_result_samples(bench, params)[combos.index(point)]

    assert samples("gemm.GemmCpu.track_tflops") == pytest.approx([flops / t / 1e12 for t in times], rel=1e-12)
    assert samples("gemm.GemmCpu.track_time") == pytest.approx(times, rel=1e-12)  # track_time is in seconds
