"""The interconnect suite's two timing styles (--timing pipelined|barrier): the option,
the loops each style runs, and checked results on 2 ranks that record the style."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from mpi_helpers import clean_env, needs_mpi

from aibench.errors import UsageError
from aibench.suites.interconnect import InterconnectSuite, measure


def run_cli(*args, timeout=180, **env):
    return subprocess.run([sys.executable, "-m", "aibench.cli", *args], capture_output=True, text=True, check=False,
                          timeout=timeout, env=clean_env(**env))


# ---- the option ------------------------------------------------------------------------------


def test_timing_is_a_declared_option_checked_by_the_suite():
    suite = InterconnectSuite()
    assert [o.flag for o in suite.options] == ["timing"]
    for good in (None, "pipelined", "barrier"):
        suite.validate_options({"timing": good})
    with pytest.raises(UsageError, match="bad --timing 'osu': expected one of pipelined, barrier"):
        suite.validate_options({"timing": "osu"})


def test_a_bad_timing_is_one_line_and_exit_2_without_launching(tmp_path):
    marker = tmp_path / "launched"
    fake = tmp_path / "fake-mpiexec"
    fake.write_text(f"#!/bin/sh\ntouch {marker}\nexit 0\n")
    fake.chmod(0o755)
    p = run_cli("run", "--suite", "interconnect", "--timing", "Barrier", AIBENCH_MPIEXEC=str(fake))
    assert p.returncode == 2, p.stdout + p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and "bad --timing 'Barrier'" in lines[0], p.stderr
    assert not marker.exists()


def test_a_non_default_timing_is_its_own_case_and_stays_out_of_asv():
    suite = InterconnectSuite()
    base = {"pattern": "allreduce", "size": 1 << 20, "dtype": "fp32", "inplace": False}
    assert suite.case_id(base) == suite.case_id({**base, "timing": "pipelined"}) == "allreduce-1MiB-fp32"
    assert suite.case_id({**base, "timing": "barrier"}) == "allreduce-1MiB-fp32-barrier"
    keys = [spec.key({**base, "timing": t}, "cpu", "mpi") for spec in suite.asv_specs() for t in measure.TIMINGS]
    assert sum(k is not None for k in keys) == 1  # the cpu class, pipelined only


# ---- the loops, with a recording communicator ------------------------------------------------


class _RecordingComm:
    """One rank's communicator that logs barriers and calls in order; Wtime advances 1 s
    per call (so a call's own duration is 1 s) and 10 s per barrier."""

    def __init__(self):
        self.log: list[str] = []
        self.clock = 0.0

    def wtime(self):
        return self.clock

    def Barrier(self):
        self.log.append("barrier")
        self.clock += 10.0

    def call(self):
        self.log.append("call")
        self.clock += 1.0

    # the reductions of time_collective on one rank
    def allreduce(self, value, op=None):
        return value

    def Allreduce(self, send, recv, op=None):
        recv[...] = send

    def gather(self, value, root=0):
        return [value]


@pytest.mark.parametrize("timing", measure.TIMINGS)
def test_each_style_runs_its_loop_and_times_the_call_alone(monkeypatch, timing):
    mpi4py = pytest.importorskip("mpi4py.MPI")
    comm = _RecordingComm()
    monkeypatch.setattr(mpi4py, "Wtime", comm.wtime)
    result = measure.time_collective(comm, comm.call, nbytes=4 << 20, budget_s=1e6, min_iters=10, timing=timing)
    assert result.timing == timing and result.iters == 10 and result.warmup == 2
    timed = comm.log[-2 * result.iters:] if timing == "barrier" else comm.log[-(result.iters + 1):]
    if timing == "barrier":  # a barrier before every call (OSU)
        assert timed == ["barrier", "call"] * result.iters
    else:  # one barrier, then back-to-back calls (IMB -sync off, nccl-tests)
        assert timed == ["barrier"] + ["call"] * result.iters
    # Barriers never count: each call took 1 s of the fake clock.
    np.testing.assert_array_equal(result.samples, np.ones(result.iters))
    assert result.rank_avg == [1.0] and result.time_s == 1.0


def test_an_unknown_timing_is_refused_by_the_loop():
    with pytest.raises(ValueError, match="unknown collective timing"):
        measure.time_collective(_RecordingComm(), lambda: None, 8, 1.0, 5, timing="osu")


# ---- both styles on 2 ranks, checked ---------------------------------------------------------


@needs_mpi
def test_both_timings_give_checked_results_on_two_ranks_and_record_the_style(tmp_path):
    figures = {}
    for timing in measure.TIMINGS:
        out = tmp_path / f"{timing}.json"
        p = run_cli("run", "--suite", "interconnect", "--timing", timing, "--ranks", "2",
                    "--impl", "mpi", "--impl", "rma-ring", "--param", "pattern=allreduce", "--param", "size=4k,1001k",
                    "--param", "inplace=false", "--time-budget", "0.2", "--no-asv", "--output", str(out))
        assert p.returncode == 0, p.stdout + p.stderr
        cases = json.loads(out.read_text())["cases"]
        assert len(cases) == 2 * 2
        for c in cases:
            assert c["status"] == "passed" and c["validation"]["status"] == "passed", c
            assert c["params"]["timing"] == timing
            assert c["impl_detail"]["timing"] == timing
            assert c["impl_detail"]["timing_like"] == measure.TIMING_LIKE[timing]
            assert c["case_id"].endswith("-barrier") == (timing == "barrier")
            m = c["metrics"]
            assert m["time_us"]["value"] == pytest.approx(c["impl_detail"]["time_us_max_rank"])
            assert m["algbw_gbps"]["value"] == pytest.approx(c["params"]["size"] / m["time_us"]["value"] / 1e3)
            figures[(timing, c["case_id"].removesuffix("-barrier"), c["impl"])] = m["time_us"]["value"]
    assert len(figures) == 2 * 4  # the same cases in both styles, each its own key


# ---- scripts/mpi_peers.py reads the peers' tables --------------------------------------------


def _mpi_peers():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "scripts" / "mpi_peers.py"
    spec = importlib.util.spec_from_file_location("mpi_peers", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_mpi_peers_reads_imb_and_osu_tables():
    peers = _mpi_peers()
    imb = """# Benchmarking Allreduce
#----------------------------------------------------------------
       #bytes #repetitions  t_min[usec]  t_max[usec]  t_avg[usec]
            0           50         0.17         0.18         0.17
      1048576           50      6598.31      6598.34      6598.33
      2097152           50     12396.97     12396.99     12396.98
"""
    osu = """# OSU MPI Allreduce Latency Test v7.4
# Datatype: MPI_FLOAT.
# Size       Avg Latency(us)   Min Latency(us)   Max Latency(us)  Iterations
1048576              2099.46           2099.40           2099.52          50
2097152              7651.40           7651.00           7651.81          50
"""
    assert peers.parse_imb(imb) == {  # the 0-byte row left out
        1048576: {"avg_us": 6598.33, "max_us": 6598.34, "iterations": 50},
        2097152: {"avg_us": 12396.98, "max_us": 12396.99, "iterations": 50}}
    assert peers.parse_osu(osu) == {
        1048576: {"avg_us": 2099.46, "max_us": 2099.52, "iterations": 50},
        2097152: {"avg_us": 7651.40, "max_us": 7651.81, "iterations": 50}}


def test_mpi_peers_table_gives_ratios_the_15_percent_rule_load_and_thread_levels(capsys):
    peers = _mpi_peers()
    mib = peers.MiB
    # Two rounds; aibench-pipelined 2x IMB -sync off at 1 MiB (DIFFERS), everything else equal.
    def run(us):
        return {size: {"avg_us": us * (size // mib), "max_us": us, "iterations": 50} for size in peers.SIZES}
    runs = {tool: [run(100.0), run(110.0)] for tool in peers.TOOLS}
    runs["aibench-pipelined"] = [{**r, mib: {**r[mib], "avg_us": 2 * r[mib]["avg_us"]}} for r in runs["aibench-pipelined"]]
    report = {"ranks": 2, "library": "MPICH Version: 5.0.2", "rounds": 2, "load_before": [3.0, 2.0, 1.0],
              "load_after": [4.0, 3.0, 2.0], "runs": runs,
              "loads": {tool: [[2.5, 1, 1], [7.25, 1, 1]] for tool in peers.TOOLS},
              "levels": {tool: ["single", "single"] for tool in peers.TOOLS}}
    peers.print_table(report)
    out = capsys.readouterr().out
    assert "1-minute load average before each measurement: 2.50 to 7.25" in out
    assert "MPI thread level: aibench-pipelined single, aibench-barrier single, imb-sync-off single" in out
    ratio_rows = {line.split()[0]: line for line in out.splitlines() if "Mi " in line and "[" in line}  # size: ratios
    assert len(ratio_rows) == len(peers.SIZES)
    assert "2.00 [2.00, 2.00] DIFFERS" in ratio_rows["1Mi"] and ratio_rows["1Mi"].count(" ok") == 2
    assert all(row.count(" ok") == 3 for size, row in ratio_rows.items() if size != "1Mi")


def test_mpi_peers_same_state_table_keeps_only_rounds_where_the_hosts_state_held(capsys):
    peers = _mpi_peers()
    mib = peers.MiB

    def run(us):
        return {size: {"avg_us": us * (size // mib), "max_us": us, "iterations": 50} for size in peers.SIZES}
    # Round 1: the host in its slow state for IMB -sync off only (probes ~800 us against ~270):
    # aibench-pipelined reads 0.34x there. Round 2: every tool in the fast state, equal figures.
    runs = {tool: [run(270.0), run(270.0)] for tool in peers.TOOLS}
    runs["imb-sync-off"][0] = run(800.0)
    probes = {tool: [{size: [270.0, 280.0] for size in peers.SIZES}, {size: [265.0, 275.0] for size in peers.SIZES}]
              for tool in peers.TOOLS}
    probes["imb-sync-off"][0] = {size: [790.0, 810.0] for size in peers.SIZES}
    report = {"ranks": 2, "library": "MPICH", "rounds": 2, "load_before": [1.0] * 3, "load_after": [1.0] * 3,
              "runs": runs, "probes": probes}
    assert peers.same_state(270.0, 280.0, 270.0 * 1.25) and not peers.same_state(270.0, 280.0, 270.0 * 1.26)
    peers.print_table(report)
    out = capsys.readouterr().out
    everything, same = out.split("host-state probe")
    assert "0.67 [0.34, 1.00] DIFFERS" in everything  # the median of 0.34 and 1.00, every round
    assert "247" not in same and "265 to 810 us" in same
    rows = {line.split()[0]: line for line in same.splitlines() if "Mi " in line and "/2)" in line}
    assert len(rows) == len(peers.SIZES)
    # The pipelined pair keeps round 2 alone (1.00, ok); the barrier pairs keep both rounds.
    assert all("1.00 [1.00, 1.00] ok (1/2)" in row and row.count("ok (2/2)") == 2 for row in rows.values())
