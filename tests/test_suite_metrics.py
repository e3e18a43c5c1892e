"""The figures the interconnect and storage suites report, from hand-made measurements, in
process and fast (no MPI launch, no reads): which figure, its unit, and which way is
better. These are the tests scripts/mutation_test.py runs against
InterconnectSuite.metrics and StorageSuite.metrics (targets.toml)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from aibench.results import Metric, Samples
from aibench.suites.interconnect import InterconnectSuite
from aibench.suites.storage import StorageSuite


def _interconnect(ranks: int) -> InterconnectSuite:
    suite = InterconnectSuite.__new__(InterconnectSuite)  # no MPI session: metrics reads only its size
    suite._session = SimpleNamespace(size=ranks)
    return suite


def test_allreduce_figures_are_nccl_tests_busbw_algbw_and_the_latency_percentiles():
    size, t = 64 << 20, 0.004  # 64 MiB in 4 ms
    samples = Samples(samples_s=[i / 1e6 for i in range(101)], stopped_by="iterations")  # 0..100 us
    m = _interconnect(4).metrics({"pattern": "allreduce", "size": size}, samples,
                                 SimpleNamespace(timing=SimpleNamespace(time_s=t)))
    algbw = size / t / 1e9  # 16.777216 GB/s
    assert list(m) == ["busbw_gbps", "algbw_gbps", "time_us", "lat_p50_us", "lat_p99_us"]
    assert m["busbw_gbps"] == Metric(pytest.approx(algbw * 2 * 3 / 4), "GB/s", True)  # 2(n-1)/n for 4 ranks
    assert m["algbw_gbps"] == Metric(pytest.approx(16.777216), "GB/s", True)
    assert m["time_us"] == Metric(pytest.approx(4000.0), "us", False)
    assert m["lat_p50_us"] == Metric(pytest.approx(50.0), "us", False)
    assert m["lat_p99_us"] == Metric(pytest.approx(99.0), "us", False)


def test_p2p_figures_are_the_weakest_link_and_the_worst_pair():
    matrix = {"bw_gbps": [[None, 10.0, 12.0], [9.0, None, 11.0], [12.5, 8.0, None]],
              "lat_p50_us": [[None, 2.0, 2.5], [2.1, None, 3.0], [2.2, 2.4, None]],
              "lat_p99_us": [[None, 4.0, 9.5], [4.1, None, 5.0], [4.2, 4.4, None]],
              "slow_links": [(2, 1)]}
    m = _interconnect(3).metrics({"pattern": "p2p", "size": 1 << 20}, Samples(samples_s=[1.0]),
                                 SimpleNamespace(matrix=matrix))
    assert m == {"gbps": Metric(8.0, "GB/s", True), "gbps_median": Metric(10.5, "GB/s", True),
                 "lat_p50_us": Metric(3.0, "us", False), "lat_p99_us": Metric(9.5, "us", False),
                 "slow_links": Metric(1.0, "links", False)}
    assert list(m)[0] == "gbps"


def _storage(pattern: str, figures: dict) -> dict[str, Metric]:
    suite = StorageSuite.__new__(StorageSuite)  # metrics reads only the reader's figures
    return suite.metrics({"pattern": pattern}, Samples(samples_s=[1.0], stopped_by="time"),
                         SimpleNamespace(figures=lambda: figures))


FIGURES = {"gbps": 3.2, "iops": 781250.0, "cpu_user_s": 0.5, "cpu_sys_s": 1.5,
           "lat_us": {"min": 10.0, "mean": 40.0, "p50": 35.0, "p90": 60.0, "p99": 90.0, "p99_9": 150.0, "max": 400.0}}


def test_sequential_reads_headline_gb_per_s_random_reads_iops():
    seq = _storage("seq", FIGURES)
    assert list(seq) == ["gbps", "iops", "time_us", "lat_min_us", "lat_mean_us", "lat_p50_us", "lat_p90_us",
                         "lat_p99_us", "lat_p99_9_us", "lat_max_us", "cpu_user_s", "cpu_sys_s"]
    assert seq["gbps"] == Metric(3.2, "GB/s", True) and seq["iops"] == Metric(781250.0, "IOPS", True)
    assert seq["time_us"] == Metric(pytest.approx(1.28), "us per read (aggregate, 1/iops)", False)
    assert [seq[f"lat_{k}_us"] for k in ("min", "p99_9", "max")] == \
        [Metric(10.0, "us", False), Metric(150.0, "us", False), Metric(400.0, "us", False)]
    assert seq["cpu_user_s"] == Metric(0.5, "s", False) and seq["cpu_sys_s"] == Metric(1.5, "s", False)
    rand = _storage("rand", FIGURES)
    assert list(rand)[:2] == ["iops", "gbps"] and rand == seq


def test_a_latency_the_reader_did_not_measure_is_left_out_and_no_reads_have_no_time():
    m = _storage("rand", {**FIGURES, "iops": 0.0, "lat_us": {**FIGURES["lat_us"], "p99_9": None}})
    assert "lat_p99_9_us" not in m and m["lat_p99_us"] == Metric(90.0, "us", False)
    assert m["time_us"] == Metric(None, "us per read (aggregate, 1/iops)", False)
