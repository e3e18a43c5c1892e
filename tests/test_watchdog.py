"""The hang watchdog (watchdog.py): who it names, and a real hung rank on 2 local ranks.
The same on hosts of the test cluster: tests/test_cluster.py."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import psutil
import pytest

from aibench import watchdog
from aibench.results import RunDocument
from mpi_helpers import clean_env, needs_mpi


def dog(size=4, timeout=10.0):
    return watchdog.Watchdog(rank=0, size=size, hosts=[f"h{r}" for r in range(size)], timeout_s=timeout,
                             token="tok", ranks=[watchdog.RankState() for _ in range(size)])


def beat(d, rank, count, where="interconnect allreduce-1MiB-fp32 [mpi]", token="tok"):
    return json.dumps({"t": token, "r": rank, "c": count, "w": where}).encode()


def test_no_verdict_before_the_timeout():
    d = dog()
    assert d.verdict(now=100.0, stalled_s=9.9) is None


def test_a_silent_rank_is_named_with_its_host_and_the_case():
    d = dog()
    d.count, d.section_label, d.detail = 7, "interconnect allreduce-1MiB-fp32", "mpi"
    for r in (1, 3):
        d.receive(beat(d, r, 7), now=100.0)
    d.receive(beat(d, 2, 7), now=80.0)  # its last word, 20 s ago
    message = d.verdict(now=100.0, stalled_s=12.0)
    assert "rank(s) 2 (h2) stopped answering" in message
    assert "interconnect allreduce-1MiB-fp32 [mpi]" in message
    assert "h1" not in message and "h3" not in message


def test_a_rank_behind_the_others_is_named():
    d = dog()
    d.count, d.section_label = 9, "interconnect allreduce-8B-fp32"
    d.receive(beat(d, 1, 9), now=100.0)
    d.receive(beat(d, 2, 9), now=100.0)
    d.receive(beat(d, 3, 6), now=100.0)  # alive, but still in an earlier stage
    message = d.verdict(now=100.0, stalled_s=30.0)
    assert "rank(s) 3 (h3) did not arrive" in message and "stopped answering" not in message


def test_all_waiting_in_one_collective_says_so():
    d = dog(size=2)
    d.count, d.section_label = 4, "x"
    d.receive(beat(d, 1, 4), now=100.0)
    assert "every rank is waiting in the same collective" in d.verdict(now=100.0, stalled_s=30.0)


@pytest.mark.parametrize("data", [beat(None, 1, 5, token="other"), b"not json", beat(None, 9, 5),
                                  json.dumps({"t": "tok", "r": 1, "c": 5, "w": 3}).encode()])
def test_stray_or_malformed_heartbeats_are_ignored(data):
    d = dog()
    d.receive(data, now=1.0)
    assert all(s.heard_at is None for s in d.ranks)


def test_a_rank_never_heard_is_listed_as_unwatched():
    d = dog(size=3)
    d.section_label = "x"
    d.receive(beat(d, 1, 0), now=100.0)
    assert "rank(s) 2 (h2) unwatched" in d.verdict(now=100.0, stalled_s=30.0)


@needs_mpi
def test_a_stopped_rank_ends_the_run_naming_it(tmp_path):
    """Rank 1 stops itself (SIGSTOP) as the case starts: the run must end within the
    timeout (plus start-up), exit 3, name rank 1, keep the document, and leave no rank."""
    out = tmp_path / "run.json"
    cmd = [sys.executable, "-m", "aibench.cli", "run", "--suite", "interconnect", "--impl", "mpi", "--ranks", "2",
           "--param", "pattern=allreduce", "--param", "size=1KiB", "--param", "dtype=fp32",
           "--param", "inplace=false", "--no-asv", "--collective-timeout", "3", "--output", str(out)]
    started = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=240, cwd=tmp_path,
                          env=clean_env(AIBENCH_TEST_FAULT="mpi:hang"))
    took = time.monotonic() - started
    assert proc.returncode == watchdog.EXIT_COLLECTIVE_TIMEOUT, proc.stderr[-2000:]
    assert "collective timeout" in proc.stderr and "rank(s) 1 (" in proc.stderr, proc.stderr[-2000:]
    assert "interconnect allreduce-1KiB-fp32 [mpi]" in proc.stderr
    doc = RunDocument.load(out)
    assert doc.status == "failed" and "rank(s) 1 (" in doc.ended_by
    assert took < 120, f"the run took {took:.0f} s to end"
    time.sleep(0.5)
    left = [p.info for p in psutil.process_iter(["pid", "cmdline"])
            if p.info["cmdline"] and str(out) in " ".join(p.info["cmdline"])]
    assert not left, f"processes left behind: {left}"
