import shutil

import pytest

CUDA_DEVICE = 0


def _gpu_reason():
    try:
        from aibench import _cuda
    except ImportError:
        return "aibench._cuda is not built"
    if _cuda.device_count() == 0:
        return f"no CUDA GPU: {_cuda.cuda_unavailable_reason()}"
    return None


def pytest_report_header(config):
    """Which instruction levels the own CPU kernels' tests run here: each test of the
    kernels runs every path this CPU can execute (and test_isa_cap.py every
    AIBENCH_CPU_ISA level), so CI's log says what was and was not covered."""
    from aibench import _core

    levels = list(_core.cpu_isa_levels())
    return [f"aibench CPU ISA levels tested: {', '.join(levels)}; bf16 paths {list(_core.lowp_paths('bf16'))}, "
            f"int8 paths {list(_core.lowp_paths('int8'))}"]


def pytest_collection_modifyitems(config, items):
    reason = _gpu_reason()
    if reason is None:
        return
    skip = pytest.mark.skip(reason=reason)
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


# CuPy on the test device and its compute capability, for the GPU test modules; each
# module provides its own `cuda` fixture (the aibench._cuda it needs, or a skip).
@pytest.fixture(scope="module")
def cp(cuda):
    cupy = pytest.importorskip("cupy")
    cupy.cuda.Device(CUDA_DEVICE).use()
    return cupy


@pytest.fixture(scope="module")
def capability(cuda):
    props = cuda.device_properties(CUDA_DEVICE)
    return props["major"] * 10 + props["minor"]


# Headless Chromium through chromedriver, for the tests of pages aibench writes (asv's
# pages, the acceptance report); skipped without them.
@pytest.fixture
def driver():
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (the test extra)")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    chromedriver = shutil.which("chromedriver")
    if not chromium or not chromedriver:
        pytest.skip("needs chromium and chromedriver (Debian: apt-get install chromium chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,900"):
        options.add_argument(arg)
    # Console messages, and the DevTools network events that list every request.
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    # An explicit chromedriver keeps Selenium from trying to download one.
    drv = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=chromedriver))
    yield drv
    drv.quit()


_CLUSTER_SECONDS: list[float] = []


def pytest_runtest_logreport(report):
    if "test_cluster.py" in report.nodeid:  # setup (the cluster comes up), call, teardown
        _CLUSTER_SECONDS.append(report.duration)


def pytest_terminal_summary(terminalreporter):
    """CI reports what the multi-host tests (tests/test_cluster.py) cost of its time."""
    if _CLUSTER_SECONDS:
        terminalreporter.write_line(f"multi-host tests (tests/test_cluster.py): {sum(_CLUSTER_SECONDS):.0f} s")
