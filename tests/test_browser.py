"""asv's published pages, opened in headless Chromium: two machines' gemm runs on one graph,
drawn with aibench's local copies of the JavaScript libraries (no internet needed).

Needs Debian's chromium and chromium-driver (chromedriver) and selenium; skipped otherwise.
AIBENCH_SCREENSHOT=path.png keeps the screenshot of the graph."""

import functools
import http.server
import json
import os
import threading
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from aibench.cli import main
from aibench.fingerprint import git_commit

REPO = Path(__file__).resolve().parents[1]
BENCHMARK = "gemm.GemmCpu.track_tflops"
SHAPES = ("256x256x256", "512x512x512")
# asv's URL of that graph with the GEMM shape (a sweep parameter) on the x-axis, showing
# only the measured cases (asv's parameter values are reprs, quoted).
GRAPH_URL = (f"#{BENCHMARK}?x-axis=shape&" + "&".join(f"p-shape=%27{s}%27" for s in SHAPES)
             + "&p-dtype=%27fp32%27&p-impl=%27aibench%27")
MACHINES = ("node-a", "node-b")

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(git_commit() is None, reason="aibench not built from a git checkout"),
]


@pytest.fixture
def published(tmp_path):
    """Two small gemm runs, as two machines, published with `aibench publish`. (m, n and
    k sweep as a product: the six non-square shapes are measured too, and asv's pages,
    which list the shapes of the default sweeps, leave them out.)"""
    runs = []
    for machine in MACHINES:
        runs.append(str(tmp_path / f"{machine}.json"))
        assert main(["run", "--suite", "gemm", "--quick", "--param", "m=256,512", "--param", "n=256,512",
                     "--param", "k=256,512", "--param", "dtype=fp32", "--impl", "aibench", "--time-budget", "0.2",
                     "--machine", machine, "--output", runs[-1], "--asv-results", str(tmp_path / "results")]) == 0
    html = tmp_path / "html"
    assert main(["publish", *runs, "--repo", str(REPO), "--results", str(tmp_path / "results"),
                 "--html", str(html)]) == 0
    return html


@pytest.fixture
def server(published):
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(published))
    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler) as httpd:
        thread = threading.Thread(target=httpd.serve_forever, daemon=True)
        thread.start()
        yield f"http://127.0.0.1:{httpd.server_address[1]}/"
        httpd.shutdown()


def network_log(driver):
    """(requested URLs, failures) from Chromium's DevTools network events."""
    urls, failures = {}, []
    for entry in driver.get_log("performance"):
        event = json.loads(entry["message"])["message"]
        params = event.get("params", {})
        if event["method"] == "Network.requestWillBeSent":
            urls[params["requestId"]] = params["request"]["url"]
        elif event["method"] == "Network.responseReceived" and params["response"]["status"] >= 400:
            failures.append(f"{params['response']['status']} {params['response']['url']}")
        elif event["method"] == "Network.loadingFailed":
            failures.append(f"{params['errorText']} {urls.get(params['requestId'])}")
    return list(urls.values()), failures


# driver before server: a machine without chromium skips before running anything.
def test_gemm_graph_of_two_machines_renders_offline(driver, server, tmp_path):
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(server + GRAPH_URL)
    # asv draws the graph with flot once both machines' graph files are loaded; flot
    # keeps its plot object on the placeholder, whose series are asv's graph lines:
    # [legend label, number of measured (non-null) points] for each.
    series_js = """
        var plot = window.jQuery && jQuery('#main-graph').data('plot');
        return plot ? plot.getData().map(function (s) {
            return [s.label, s.data.filter(function (p) { return p[1] !== null; }).length];
        }) : [];"""
    series = WebDriverWait(driver, 30).until(lambda d: (s := d.execute_script(series_js)) and len(s) >= 2 and s)
    screenshot = Path(os.environ.get("AIBENCH_SCREENSHOT") or tmp_path / "asv-gemm-two-machines.png")
    screenshot.parent.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(screenshot))

    errors = [m["message"] for m in driver.get_log("browser") if m["level"] == "SEVERE"]
    assert errors == [], errors
    urls, failures = network_log(driver)
    assert failures == [], failures
    assert [u for u in urls if not u.startswith(server)] == [], "pages must load nothing from the internet"
    assert driver.find_elements("css selector", "#main-graph canvas.flot-base"), "no plot canvas"

    # Both machines' graph files were fetched, and each machine is a line on the plot
    # (its legend label names it) with a measured point at both shapes of the x-axis.
    graph_files = [path for path in (unquote(urlsplit(u).path) for u in urls) if path.endswith(f"/{BENCHMARK}.json")]
    for machine in MACHINES:
        assert any(f"/machine-{machine}/" in f for f in graph_files), (machine, graph_files)
        assert [n for label, n in series if f"machine-{machine}" in (label or "") and n == len(SHAPES)], \
            (machine, series)
