"""The bound of GPU all-reduce busbw (interconnect bounds.gpu_bound) through the device
double's NVML: a GPU's active NVLinks by version plus its PCIe link, the factor 2(n-1)/n
that in-switch reductions (NVLS) need, ranks sharing a GPU, and the network ports of
nodes whose GPUs have no NVLink. The ranks' allgather is a stand-in session here; the
suite's MPI runs are in test_gpu_double.py."""

import sys

import pytest

from aibench.suites.interconnect import bounds
from gpu_double import install

PCIE_GEN5_X16 = 32e9 * 16 * 128 / 130 / 8  # bytes/s one way after 128b/130b encoding
NVLINK4_X18 = 18 * 25e9  # H100/H200 SXM: 900 GB/s both ways over 18 links


@pytest.fixture
def gpus(monkeypatch):
    return install(monkeypatch)


class AlikeRanks:
    """A session of `hosts` ranks (one per entry, named by host) whose GPUs all answer as
    this process's does: allgather gives this rank's value for every rank."""

    def __init__(self, hosts):
        self.hosts, self.size = list(hosts), len(hosts)
        self.comm = self

    def allgather(self, value):
        return [value] * self.size

    def node_ranks(self):
        nodes = {}
        for r, h in enumerate(self.hosts):
            nodes.setdefault(h, []).append(r)
        return nodes


def test_eighteen_nvlink_4_links_move_450_gb_s_each_way(gpus):
    rate, source = bounds.nvlink_rate(0)
    assert rate == pytest.approx(NVLINK4_X18) and source.startswith("18 active NVLink 4.0 link(s) x 25 GB/s = 450 GB/s")
    links = bounds.gpu_link_rate(0)  # and the PCIe link, the way to host memory and the NICs
    assert links["rate"] == pytest.approx(NVLINK4_X18 + PCIE_GEN5_X16) and links["nvlink"] is True
    gpus.specs[0].nvlink_version, gpus.specs[0].nvlink_links = 7, 18  # B200: NVLink 5.0
    assert bounds.nvlink_rate(0)[0] == pytest.approx(18 * 50e9)


def test_a_gpu_without_nvlink_is_bounded_by_its_pcie_link(gpus):
    gpus.specs[0].nvlink_links = 0
    assert bounds.nvlink_rate(0) == (0.0, "no active NVLink (NVML)")
    links = bounds.gpu_link_rate(0)
    assert links["rate"] == pytest.approx(PCIE_GEN5_X16) and links["nvlink"] is False
    assert links["source"].startswith("PCIe Gen5 x16 link")


def test_no_bound_when_a_link_rate_is_unknown_and_why(gpus, monkeypatch):
    gpus.specs[0].nvlink_version = 8  # NVLink 6.0: no datasheet rate in the table
    assert bounds.gpu_link_rate(0) == {"rate": None, "nvlink": None, "source": (
        "no independent bound: no rate known for NVLink version 6.0 (NVML nvmlNvlinkVersion_t 8)")}
    gpus.specs[0].nvlink_version = 6
    gpus.specs[0].pcie_max_link = (9, 16)  # NVLink known, the host link not: bytes could leave by it
    links = bounds.gpu_link_rate(0)
    assert links["rate"] is None and links["nvlink"] is True
    assert links["source"].startswith("no independent bound: NVML reports PCIe Gen9 x16 (and 18 active NVLink")

    def gpu_lost(handle, link):
        raise sys.modules["pynvml"].NVMLError("GPU is lost")

    monkeypatch.setattr(sys.modules["pynvml"], "nvmlDeviceGetNvLinkState", gpu_lost)  # not "no such link"
    assert bounds.nvlink_rate(0) == (None, "NVML gives no NVLink 0 state or version (NVMLError: GPU is lost)")
    monkeypatch.setitem(sys.modules, "pynvml", None)
    assert bounds.nvlink_rate(0) == (None, "NVML does not answer (no NVLink state)")


def test_the_double_answers_nvlink_queries_as_nvml_does(gpus):
    nvml = sys.modules["pynvml"]
    nvml.nvmlInit()
    handle = nvml.nvmlDeviceGetHandleByIndex(0)
    assert nvml.nvmlDeviceGetNvLinkState(handle, 17) == nvml.NVML_FEATURE_ENABLED
    assert nvml.nvmlDeviceGetNvLinkVersion(handle, 0) == 6  # nvml.h: NVML_NVLINK_VERSION_4_0
    with pytest.raises(nvml.NVMLError_InvalidArgument):
        nvml.nvmlDeviceGetNvLinkState(handle, 18)
    gpus.specs[0].nvlink_links = 0
    with pytest.raises(nvml.NVMLError_NotSupported) as raised:
        nvml.nvmlDeviceGetNvLinkVersion(handle, 0)
    assert raised.value.value == nvml.NVML_ERROR_NOT_SUPPORTED


@pytest.mark.parametrize("ranks", [2, 8])
def test_busbw_bound_of_one_node_is_the_links_times_2_n_minus_1_over_n(gpus, ranks):
    """2 ranks: busbw = algbw <= 513 GB/s; 8: busbw <= 1.75 x 513 (NVLS on 8 x H200 reports
    ~480 GB/s busbw, over the 450 of NVLink alone)."""
    bound = bounds.gpu_bound(AlikeRanks(["node0"] * ranks), 0, shares_gpu=False)
    factor = 2 * (ranks - 1) / ranks
    assert bound["value"] == pytest.approx((NVLINK4_X18 + PCIE_GEN5_X16) / 1e9 * factor) and bound["unit"] == "GB/s"
    assert bound["source"].startswith("the links of rank 0's GPU on node0: 18 active NVLink 4.0 link(s)")
    assert "in-switch reductions included" in bound["source"]


def test_ranks_sharing_a_gpu_bound_nothing(gpus):
    assert bounds.gpu_bound(AlikeRanks(["node0"] * 2), 0, shares_gpu=True) is None


def test_pcie_gpus_across_nodes_are_also_bounded_by_the_node_network_ports(gpus, monkeypatch):
    from aibench import fingerprint

    monkeypatch.setattr(fingerprint, "_nics", lambda: [{"name": "ib0", "kind": "InfiniBand", "speed_gbps": 100.0}])
    gpus.specs[0].nvlink_links = 0
    two_nodes = AlikeRanks(["node0", "node0", "node1", "node1"])  # any number of ranks per node
    bound = bounds.gpu_bound(two_nodes, 0, shares_gpu=False)
    assert bound["value"] == pytest.approx(12.5 * 1.5)  # 100 Gb/s, algbw <= 12.5 GB/s, x 2(n-1)/n
    assert bound["source"].startswith("the network ports of node0 in sysfs: 12.5 GB/s in all:")
    gpus.specs[0].nvlink_links = 18  # multi-node NVLink may carry the bytes between nodes: no network bound
    bound = bounds.gpu_bound(two_nodes, 0, shares_gpu=False)
    assert bound["value"] == pytest.approx((NVLINK4_X18 + PCIE_GEN5_X16) / 1e9 * 1.5)
