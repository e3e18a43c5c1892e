"""The memory suite: STREAM per NUMA node on the cpu target (own C++ kernels and numpy),
its DRAM bound from the DIMM population or the recorded reason there is none, every
fault kind failing its case, and the GPU copies (d2d, h2d, d2h) through the device double
(figures checked against the told copy time) and, marked gpu, on a real GPU."""

import json
import struct

import numpy as np
import pytest

from aibench import _core
from aibench.cli import main
from aibench.faults import ENV, FACTOR_ENV
from aibench.harness import SamplingPolicy
from aibench.suites import get_suite
from aibench.suites.base import RunContext
from aibench.suites.memory import cpu as mem_cpu
from aibench.suites.memory import dram
from aibench.targets import parse_target

DMIDECODE = """# dmidecode 3.4
Handle 0x0040, DMI type 17, 92 bytes
Memory Device
\tTotal Width: 72 bits
\tData Width: 64 bits
\tSize: 32 GB
\tLocator: DIMM_A1
\tType: DDR5
\tSpeed: 5600 MT/s
\tConfigured Memory Speed: 4800 MT/s

Handle 0x0041, DMI type 17, 92 bytes
Memory Device
\tTotal Width: 72 bits
\tData Width: 64 bits
\tSize: No Module Installed
\tLocator: DIMM_A2
\tConfigured Memory Speed: Unknown

Handle 0x0042, DMI type 17, 92 bytes
Memory Device
\tTotal Width: 72 bits
\tData Width: 64 bits
\tSize: 32 GB
\tLocator: DIMM_B1
\tConfigured Memory Speed: 4800 MT/s
"""
DIMM_BOUND_GBPS = 2 * 4800e6 * 8 / 1e9  # two populated DIMMs, 64 data bits each
SMALL = 1 << 20  # bytes per array in the in-process cases


def with_dimm_table(monkeypatch) -> None:
    """The DIMM population of DMIDECODE, whatever this machine has (a VM has none)."""
    monkeypatch.setattr(dram, "dimm_population", lambda root="/": (dram.parse_dmidecode(DMIDECODE), "dmidecode -t 17"))


def without_dimm_table(monkeypatch) -> None:
    monkeypatch.setattr(dram, "dimm_population", lambda root="/": ([], "no dmidecode on PATH"))


def past_the_cache(monkeypatch) -> None:
    """The in-process cases' 1 MiB arrays count as past the cache, so the DRAM bound applies
    (they may still run from a real cache: the run tests' DIMM table is far above any cache)."""
    monkeypatch.setattr(mem_cpu, "last_level_cache_bytes", lambda: 64 << 10)


def fast_dimm_table(monkeypatch) -> None:
    """16 DDR5-8000 DIMMs: 1.024 TB/s, above what two cores copy even in their caches."""
    dimms = [dram.Dimm(f"DIMM{i}", 8000, 64, 32768) for i in range(16)]
    monkeypatch.setattr(dram, "dimm_population", lambda root="/": (dimms, "dmidecode -t 17"))


def run_case(impl, kernel="triad", size=SMALL):
    suite = get_suite("memory")
    info = next(i for i in suite.impls() if i.name == impl)
    ctx = RunContext(target=parse_target("cpu"), policy=SamplingPolicy(budget_s=0.05, warmup_s=0.01, settle_s=0.0))
    params = {"kernel": kernel, "size": size, "node": min(dram.numa_nodes())}
    (result,) = suite.run_case(params, info, ctx)
    return result


# --- the DRAM bound --------------------------------------------------------------------

def test_dmidecode_dimms_give_the_bound(monkeypatch):
    dimms = dram.parse_dmidecode(DMIDECODE)
    assert [(d.locator, d.mts, d.data_bits) for d in dimms] == [("DIMM_A1", 4800, 64), ("DIMM_B1", 4800, 64)]
    with_dimm_table(monkeypatch)
    rate, source = dram.dram_bound()
    assert rate == pytest.approx(DIMM_BOUND_GBPS * 1e9)
    assert "2 x (4800 MT/s x 64 bit)" in source and "dmidecode" in source


def test_a_node_gets_its_share_of_identical_dimms(tmp_path, monkeypatch):
    with_dimm_table(monkeypatch)
    for node, kb in ((0, 1000), (1, 1010)):  # a node's MemTotal is a little under its DIMMs' size
        (tmp_path / f"sys/devices/system/node/node{node}").mkdir(parents=True)
        (tmp_path / f"sys/devices/system/node/node{node}/meminfo").write_text(f"Node {node} MemTotal: {kb} kB\n")
    rate, source = dram.dram_bound(1, str(tmp_path))
    assert rate == pytest.approx(DIMM_BOUND_GBPS / 2 * 1e9) and "node 1's 1 of 2 identical DIMMs" in source
    rate, _ = dram.dram_bound(None, str(tmp_path))
    assert rate == pytest.approx(DIMM_BOUND_GBPS * 1e9)


def _smbios17(locator: bytes, size_mb: int, mts: int, data_bits: int = 64) -> bytes:
    raw = bytearray(0x28)
    raw[0], raw[1] = 17, 0x28
    struct.pack_into("<HH", raw, 0x0A, data_bits, size_mb)
    raw[0x10] = 1  # device locator: string 1
    struct.pack_into("<H", raw, 0x20, mts)
    return bytes(raw) + locator + b"\0\0"


def test_smbios_records_in_sysfs_give_the_dimms(tmp_path):
    entries = tmp_path / "sys/firmware/dmi/entries"
    for i, record in enumerate([_smbios17(b"P0_A", 16384, 3200), _smbios17(b"P0_B", 0, 0)]):
        (entries / f"17-{i}").mkdir(parents=True)
        (entries / f"17-{i}" / "raw").write_bytes(record)
    dimms, where = dram.dimm_population(str(tmp_path))
    assert [(d.locator, d.mts, d.data_bits) for d in dimms] == [("P0_A", 3200, 64)]  # the empty slot is left out
    assert "/sys/firmware/dmi/entries" in where


def test_no_dimm_table_is_no_bound_with_the_reason(tmp_path):
    rate, reason = dram.dram_bound(str(tmp_path))
    assert rate is None and reason.startswith("no independent bound: ") and "type 17" in reason


def test_numa_nodes_are_the_allowed_cpus_of_each_node(tmp_path, monkeypatch):
    for node, cpus in (("node0", "0-1"), ("node1", "2-3,6"), ("node2", "")):  # node2: memory only
        (tmp_path / "sys/devices/system/node" / node).mkdir(parents=True)
        (tmp_path / "sys/devices/system/node" / node / "cpulist").write_text(cpus + "\n")
    monkeypatch.setattr(dram.os, "sched_getaffinity", lambda pid: {0, 1, 2, 3})
    assert dram.numa_nodes(str(tmp_path)) == {0: [0, 1], 1: [2, 3]}
    assert dram.parse_cpulist("0-3,8,10-11") == [0, 1, 2, 3, 8, 10, 11]


# --- the kernels -----------------------------------------------------------------------

@pytest.mark.parametrize("streaming", [False, True])
@pytest.mark.parametrize("kernel", list(mem_cpu.KERNELS))
def test_own_kernels_write_exactly_streams_result(kernel, streaming):
    """Every kernel, with and without non-temporal stores, on arrays that start off a
    16-byte boundary and have an odd length (the streaming loop's head and tail)."""
    n = 100_003
    backing = [np.empty(n + 1) for _ in range(3)]
    a, b, c = (x[1:] for x in backing)
    op = _core.Stream(a, b, c, kernel, 2, sorted(dram.numa_nodes()[min(dram.numa_nodes())]), streaming, 3.0)
    op.init()
    op.time(3)
    for which, arr in zip("abc", (a, b, c)):
        np.testing.assert_array_equal(arr, mem_cpu.expected(kernel, which, 0, n))
    assert op.describe["stores"] == ("non-temporal (SSE2 MOVNTPD)" if streaming else "regular")


def test_bad_arrays_are_refused():
    a, b = np.empty(16), np.empty(16)
    with pytest.raises(ValueError, match="same length"):
        _core.Stream(a, b, np.empty(8), "copy", 1)
    with pytest.raises(ValueError, match="float64"):
        _core.Stream(a, b, np.empty(16, dtype=np.float32), "copy", 1)
    with pytest.raises(ValueError, match="kernel must be"):
        _core.Stream(a, b, np.empty(16), "stream", 1)


@pytest.mark.parametrize("impl", ["aibench", "numpy"])
def test_a_case_passes_with_the_stream_byte_count_and_the_reason_it_has_no_bound(impl, monkeypatch):
    without_dimm_table(monkeypatch)
    r = run_case(impl, "triad")
    assert r.status == "passed", r.error
    median = r.stats.summary.median
    assert r.metrics["gbps"].value == pytest.approx(3 * SMALL / median / 1e9)  # 3 x 8 B per element
    assert r.metrics["gbps_best"].value == pytest.approx(3 * SMALL / r.stats.summary.min / 1e9)
    assert r.bound is None and r.impl_detail["dram_bound"].startswith("no independent bound: ")
    assert r.impl_detail["node"] == min(dram.numa_nodes()) and r.impl_detail["threads"] >= 1


@pytest.mark.parametrize("impl", ["aibench", "numpy"])
def test_the_dimm_bound_is_recorded_with_percent_of_peak(impl, monkeypatch):
    fast_dimm_table(monkeypatch)
    past_the_cache(monkeypatch)
    r = run_case(impl, "copy")
    assert r.status == "passed", r.error
    assert r.bound["value"] == pytest.approx(1024.0) and r.bound["metric"] == "gbps_best"
    assert r.percent_of_peak == pytest.approx(100 * r.metrics["gbps"].value / 1024.0)


def test_arrays_the_cache_can_hold_have_no_dram_bound(monkeypatch):
    with_dimm_table(monkeypatch)
    monkeypatch.setattr(mem_cpu, "last_level_cache_bytes", lambda: 8 * SMALL)
    r = run_case("aibench", "copy")
    assert r.status == "passed" and r.bound is None, r.error
    assert "not past twice the last-level cache" in r.impl_detail["dram_bound"]


@pytest.mark.parametrize("kind", ["element", "nan"])
@pytest.mark.parametrize("impl", ["aibench", "numpy"])
def test_a_corrupted_result_fails_its_case(impl, kind, monkeypatch):
    monkeypatch.setenv(ENV, f"{impl}:{kind}")
    r = run_case(impl, "triad")
    assert r.status == "failed" and r.error.startswith("wrong result: triad output array a[") and not r.metrics


@pytest.mark.parametrize("impl", ["aibench", "numpy"])
def test_an_inflated_figure_fails_on_the_dimm_bound(impl, monkeypatch):
    with_dimm_table(monkeypatch)
    past_the_cache(monkeypatch)
    monkeypatch.setenv(ENV, f"{impl}:inflate")
    monkeypatch.setenv(FACTOR_ENV, "1e6")  # far above 76.8 GB/s from any real figure
    r = run_case(impl, "copy")
    assert r.status == "failed" and r.error.startswith("exceeds physical bound: gbps_best"), r.error
    assert "DRAM data rate of the machine's DIMMs" in r.error


def test_defaults_one_case_per_node_arrays_four_times_the_l3(monkeypatch):
    from aibench.suites import memory

    monkeypatch.setattr(memory, "numa_nodes", lambda: {0: [0], 1: [1]})
    cases = get_suite("memory").default_cases("quick", parse_target("cpu"))
    assert [(c["kernel"], c["node"]) for c in cases] == [("copy", 0), ("triad", 0), ("copy", 1), ("triad", 1)]
    l3 = mem_cpu.cache_sizes().get("L3") or mem_cpu.last_level_cache_bytes()
    assert all(c["size"] >= max(4 * l3, 64 << 20) for c in cases)


@pytest.mark.parametrize("param, said", [("node=7", "is not a NUMA node"), ("kernel=d2d", "not a cpu kernel"),
                                         ("size=1k", "too small")])
def test_bad_parameters_exit_2_with_one_line(param, said, tmp_path, capsys):
    code = main(["run", "--suite", "memory", "--param", param, "--output", str(tmp_path / "r.json"), "--no-asv"])
    err = capsys.readouterr().err
    assert code == 2 and said in err and "Traceback" not in err


# --- GPU copies ------------------------------------------------------------------------

from test_gpu_double import device, run_cuda  # noqa: E402,F401 - the double/real-GPU fixture

COPY_S = 1e-3  # what one copy takes on the double
GPU_SIZE = 1 << 20


def _pcie_gen5_x16(monkeypatch):
    """The double's NVML with the PCIe link queries (an SXM H200's Gen5 x16)."""
    import sys

    nvml = sys.modules["pynvml"]
    monkeypatch.setattr(nvml, "nvmlDeviceGetMaxPcieLinkGeneration", lambda h: 5, raising=False)
    monkeypatch.setattr(nvml, "nvmlDeviceGetMaxPcieLinkWidth", lambda h: 16, raising=False)


def _gpu_args(kernels=("d2d", "h2d", "d2h")):
    return ["--suite", "memory", "--param", "kernel=" + ",".join(kernels), "--param", f"size={GPU_SIZE}"]


def test_gpu_copies_validate_at_the_told_rate_under_their_bounds(device, tmp_path, monkeypatch):
    if device is not None:
        device.kernel_seconds["copy"] = COPY_S
        _pcie_gen5_x16(monkeypatch)
    code, doc = run_cuda(tmp_path, *_gpu_args())
    assert code == 0, [(c["case_id"], c["error"]) for c in doc["cases"]]
    cases = {c["params"]["kernel"]: c for c in doc["cases"]}
    assert set(cases) == {"d2d", "h2d", "d2h"}
    for kernel, moved in (("d2d", 2 * GPU_SIZE), ("h2d", GPU_SIZE), ("d2h", GPU_SIZE)):
        c = cases[kernel]
        if device is not None:
            assert c["metrics"]["gbps"]["value"] == pytest.approx(moved / COPY_S / 1e9, rel=1e-9)
        else:
            assert c["metrics"]["gbps"]["value"] > 0
    if device is not None:  # the double is an H200 SXM on PCIe Gen5 x16
        assert cases["d2d"]["bound"]["value"] == 4800.0 and "H200 SXM" in cases["d2d"]["bound"]["source"]
        assert cases["h2d"]["bound"]["value"] == pytest.approx(32 * 16 * 128 / 130 / 8)
        assert "PCIe Gen5 x16" in cases["d2h"]["bound"]["source"]


@pytest.mark.parametrize("kind", ["element", "nan"])
def test_a_corrupted_gpu_copy_fails(device, tmp_path, monkeypatch, kind):
    monkeypatch.setenv(ENV, f"cupy:{kind}")
    code, doc = run_cuda(tmp_path, *_gpu_args())
    assert code == 1 and all(c["status"] == "failed" and "wrong result" in c["error"] for c in doc["cases"])


def test_an_inflated_gpu_copy_fails_on_the_hbm_and_pcie_bounds(device, tmp_path, monkeypatch):
    if device is None:
        pytest.skip("the told copy time places the figure against the bound: the double only")
    device.kernel_seconds["copy"] = COPY_S
    _pcie_gen5_x16(monkeypatch)
    monkeypatch.setenv(ENV, "cupy:inflate")
    monkeypatch.setenv(FACTOR_ENV, "1e6")
    code, doc = run_cuda(tmp_path, *_gpu_args())
    assert code == 1
    errors = {c["params"]["kernel"]: c["error"] for c in doc["cases"]}
    assert "exceeds physical bound" in errors["d2d"] and "H200 SXM" in errors["d2d"]
    assert "exceeds physical bound" in errors["h2d"] and "PCIe Gen5 x16" in errors["h2d"]


def test_gpu_copies_without_an_nvml_link_record_why_there_is_no_bound(device, tmp_path, monkeypatch):
    if device is None:
        pytest.skip("a real GPU's NVML gives its link")
    import sys

    nvml = sys.modules["pynvml"]

    def not_supported(handle):  # as NVML answers on a board or driver without the query
        raise nvml.NVMLError_NotSupported()

    monkeypatch.setattr(nvml, "nvmlDeviceGetMaxPcieLinkGeneration", not_supported)
    monkeypatch.setattr(nvml, "nvmlDeviceGetMaxPcieLinkWidth", not_supported)
    code, doc = run_cuda(tmp_path, *_gpu_args(("h2d",)))
    (case,) = doc["cases"]
    assert code == 0 and case["bound"] is None
    assert case["impl_detail"]["bound"].startswith("no independent bound: NVML gives no PCIe link")
    json.dumps(case)
