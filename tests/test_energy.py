"""Energy meters against sources with known wattages, and the power suite end to end."""

import http.server
import json
import threading
import time
from pathlib import Path

import pytest

from aibench.cli import main
from aibench.energy import ipmi, rapl, redfish

from fake_rapl import FakeRapl


def _window(meter, seconds):
    meter.start()
    time.sleep(seconds)
    return meter.stop()


def test_rapl_reader_reports_known_wattage_across_wraparound(tmp_path, monkeypatch):
    monkeypatch.setenv("AIBENCH_POWERCAP_ROOT", str(tmp_path))
    # 150 W wraps a 60 J counter every 0.4 s: the reader must add the wraps back.
    with FakeRapl(tmp_path, 150.0, dram_watts=12.5, max_range_uj=60_000_000):
        zones, reasons = rapl.discover()
        assert sorted(z.scope for z in zones) == ["cpu package", "dram"] and not reasons
        readings = [None, None]
        threads = [threading.Thread(target=lambda i=i, z=z: readings.__setitem__(i, _window(z, 1.6)))
                   for i, z in enumerate(zones)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    watts = {r.scope: r.watts for r in readings}
    assert watts["cpu package"] == pytest.approx(150.0, rel=0.02)
    assert watts["dram"] == pytest.approx(12.5, rel=0.02)


def test_unreadable_rapl_counter_gives_the_reason(tmp_path, monkeypatch):
    monkeypatch.setenv("AIBENCH_POWERCAP_ROOT", str(tmp_path))
    FakeRapl(tmp_path, 10.0)  # files only, no thread
    original = Path.read_text

    def deny(self, *a, **k):
        if self.name == "energy_uj":
            raise PermissionError(13, "Permission denied")
        return original(self, *a, **k)

    monkeypatch.setattr(Path, "read_text", deny)
    zones, reasons = rapl.discover()
    assert zones == [] and "not readable" in reasons[0] and "root-only" in reasons[0]


def test_missing_powercap_directory_is_a_reason(tmp_path, monkeypatch):
    monkeypatch.setenv("AIBENCH_POWERCAP_ROOT", str(tmp_path / "nope"))
    assert rapl.discover() == ([], [f"RAPL: no powercap directory {tmp_path / 'nope'}"])


# Recorded `ipmitool dcmi power reading` outputs (Dell iDRAC 9 and a Supermicro BMC).
IPMI_ACTIVE = """
    Instantaneous power reading:                   412 Watts
    Minimum during sampling period:                 98 Watts
    Maximum during sampling period:                688 Watts
    Average power reading over sample period:      402 Watts
    IPMI timestamp:                           Thu Nov 26 07:55:12 2026
    Sampling period:                          00000001 Seconds.
    Power reading state is:                   activated
"""
IPMI_DEACTIVATED = """
    Instantaneous power reading:                     0 Watts
    Minimum during sampling period:                  0 Watts
    Maximum during sampling period:                  0 Watts
    Average power reading over sample period:        0 Watts
    IPMI timestamp:                           Thu Jan  1 00:00:00 1970
    Sampling period:                          00000000 Seconds.
    Power reading state is:                   deactivated
"""


def test_ipmitool_output_parsing():
    assert ipmi.parse_power_reading(IPMI_ACTIVE) == 412.0
    with pytest.raises(ValueError, match="deactivated"):
        ipmi.parse_power_reading(IPMI_DEACTIVATED)
    with pytest.raises(ValueError):
        ipmi.parse_power_reading("Error: unable to establish IPMI v2 / RMCP+ session")


def _redfish_server(documents):
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            doc = documents.get(self.path.rstrip("/"))
            body = json.dumps(doc).encode() if doc is not None else b"{}"
            self.send_response(200 if doc is not None else 404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.mark.parametrize("style", ["Power", "EnvironmentMetrics"])
def test_redfish_chassis_power(style):
    docs = {"/redfish/v1/Chassis": {"@odata.id": "/redfish/v1/Chassis",
                                    "Members": [{"@odata.id": "/redfish/v1/Chassis/System.Embedded.1"}]}}
    if style == "Power":  # DMTF Power schema (deprecated but common)
        docs["/redfish/v1/Chassis/System.Embedded.1"] = {"Power": {"@odata.id": "/redfish/v1/Chassis/System.Embedded.1/Power"}}
        docs["/redfish/v1/Chassis/System.Embedded.1/Power"] = {
            "@odata.type": "#Power.v1_7_1.Power",
            "PowerControl": [{"MemberId": "0", "Name": "System Power Control", "PowerConsumedWatts": 731}]}
        expected = 731.0
    else:  # newer EnvironmentMetrics
        docs["/redfish/v1/Chassis/System.Embedded.1"] = {
            "EnvironmentMetrics": {"@odata.id": "/redfish/v1/Chassis/System.Embedded.1/EnvironmentMetrics"}}
        docs["/redfish/v1/Chassis/System.Embedded.1/EnvironmentMetrics"] = {
            "@odata.type": "#EnvironmentMetrics.v1_3_0.EnvironmentMetrics", "PowerWatts": {"Reading": 655.5}}
        expected = 655.5
    server = _redfish_server(docs)
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        assert redfish.chassis_power_watts(url) == expected
        meters, reasons = redfish.discover(url)
        assert not reasons
        meters[0].update_period_s = 0.1
        assert _window(meters[0], 0.5).watts == pytest.approx(expected, rel=1e-6)
    finally:
        server.shutdown()


def test_unreachable_redfish_is_a_reason_not_a_crash():
    meters, reasons = redfish.discover("http://127.0.0.1:9")
    assert meters == [] and reasons and "Redfish" in reasons[0]


def test_power_suite_reports_simulated_rapl_wattage_and_j_per_tflop(tmp_path, monkeypatch):
    monkeypatch.setenv("AIBENCH_POWERCAP_ROOT", str(tmp_path / "powercap"))
    out = tmp_path / "run.json"
    with FakeRapl(tmp_path / "powercap", 85.0):
        code = main(["run", "--suite", "power", "--quick", "--impl", "aibench", "--param", "m=512", "--param", "n=512",
                     "--param", "k=512", "--param", "dtype=fp32", "--power-window", "1.5", "--time-budget", "0.2",
                     "--no-asv", "--output", str(out)])
    assert code == 0
    case = json.loads(out.read_text())["cases"][0]
    power = case["power"]
    assert power["available"] and power["primary"]["sources"] == ["rapl (cpu package: package-0)"]
    # 5%: the fake counter is written by a thread, which a loaded 2-core machine delays by
    # tens of ms over the 1.5 s window; a unit or scale slip is far outside it.
    assert case["metrics"]["avg_watts"]["value"] == pytest.approx(85.0, rel=0.05)
    assert power["primary"]["idle_watts"] == pytest.approx(85.0, rel=0.05)
    assert 0 < power["meter_cost_fraction"] < 0.01  # the meters' reads cost under 1% of one core
    # J/TFLOP is the energy of the window over the work done in it.
    work_tflop = power["sustained_tflops"] * power["window_s"]
    assert case["metrics"]["joules_per_tflop"]["value"] == pytest.approx(power["primary"]["joules"] / work_tflop, rel=1e-9)
    assert case["metrics"]["joules_per_tflop"]["value"] == pytest.approx(85.0 / power["sustained_tflops"], rel=0.06)


def test_without_an_energy_source_there_are_no_energy_metrics(tmp_path, monkeypatch):
    monkeypatch.setenv("AIBENCH_POWERCAP_ROOT", str(tmp_path / "none"))
    out = tmp_path / "run.json"
    code = main(["run", "--power", "--impl", "aibench", "--param", "m=64", "--param", "n=64", "--param", "k=64",
                 "--param", "dtype=fp32", "--time-budget", "0.05", "--no-asv", "--output", str(out)])
    assert code == 0
    case = json.loads(out.read_text())["cases"][0]
    assert case["status"] == "passed" and "avg_watts" not in case["metrics"]
    assert case["power"]["reason"].startswith("no readable energy source: RAPL: no powercap directory")


@pytest.mark.gpu
def test_nvml_energy_on_the_gpu(tmp_path):
    out = tmp_path / "run.json"
    code = main(["run", "--target", "cuda", "--power", "--power-window", "2", "--impl", "cublas", "--param", "m=8192",
                 "--param", "n=8192", "--param", "k=8192", "--param", "dtype=bf16", "--time-budget", "0.3",
                 "--no-asv", "--output", str(out)])
    assert code == 0
    case = json.loads(out.read_text())["cases"][0]
    assert any(m["source"] == "nvml" for m in case["power"]["meters"])
    assert 50 < case["metrics"]["avg_watts"]["value"] < 1500
