"""The hang watchdog (watchdog.py): who it names, and a real hung rank on 2 local ranks.
The same on hosts of the test cluster: tests/test_cluster.py."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import psutil
import pytest

from aibench import leftovers, watchdog
from aibench.results import RunDocument
from mpi_helpers import clean_env, needs_mpi

KEY = bytes(range(watchdog.KEY_SIZE))
_SEQ = iter(range(1, 10**6))  # every beat a fresh sequence number, as a rank sends them


def dog(size=4, timeout=10.0):
    return watchdog.Watchdog(rank=0, size=size, hosts=[f"h{r}" for r in range(size)], timeout_s=timeout,
                             key=KEY, ranks=[watchdog.RankState() for _ in range(size)])


def beat(d, rank, count, where="interconnect allreduce-1MiB-fp32 [mpi]", key=KEY, seq=None):
    return watchdog.encode_beat(key, rank, next(_SEQ) if seq is None else seq, count, where)


def test_no_verdict_before_the_timeout():
    d = dog()
    assert d.verdict(now=100.0, stalled_s=9.9) is None


def test_a_silent_rank_is_named_with_its_host_and_the_case():
    d = dog()
    d.count, d.section_label, d.detail = 7, "interconnect allreduce-1MiB-fp32", "mpi"
    for r in (1, 3):
        assert d.receive(beat(d, r, 7), now=100.0)
    assert d.receive(beat(d, 2, 7), now=80.0)  # its last word, 20 s ago
    message = d.verdict(now=100.0, stalled_s=12.0)
    assert "rank(s) 2 (h2) stopped answering" in message
    assert "interconnect allreduce-1MiB-fp32 [mpi]" in message
    assert "h1" not in message and "h3" not in message and "dropped" not in message


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


def test_a_long_where_is_cut_to_whole_characters():
    d = dog(size=2)
    assert d.receive(beat(d, 1, 1, where="é" * 200), now=1.0)
    assert d.ranks[1].where == "é" * 80  # 160 bytes of two-byte characters


def _forged_with_a_bad_mac():
    good = beat(None, 1, 5)
    return good[:-1] + bytes([good[-1] ^ 1])


# What fault 14 of issue #27 sent (JSON that overflowed int(), nesting that overflowed the
# parser), and the rest of what anyone who reaches the port could send.
HOSTILE = {
    "json with an infinite rank": b'{"t":"x","r":Infinity,"c":1,"w":null}',
    "4000 [": b"[" * 4000,
    "random bytes": os.urandom(watchdog.DATAGRAM_SIZE),
    "random bytes, another size": os.urandom(97),
    "empty": b"",
    "too long": b"\0" * 60000,
    "another run's key": beat(None, 1, 5, key=b"k" * watchdog.KEY_SIZE),
    "a bad mac": _forged_with_a_bad_mac(),
    "rank out of range": beat(None, 9, 5),
    "rank 0 (never sent)": beat(None, 0, 5),
    "one byte short": beat(None, 1, 5)[:-1],
    "one byte long": beat(None, 1, 5) + b"x",
}


@pytest.mark.parametrize("name", HOSTILE)
def test_a_datagram_that_is_not_a_heartbeat_is_dropped_and_counted(name):
    d = dog()
    assert d.receive(HOSTILE[name], now=1.0) is False
    assert all(s.heard_at is None for s in d.ranks) and d.dropped == 1


def test_a_replayed_heartbeat_is_dropped():
    d = dog()
    old = beat(d, 1, 3, seq=5)
    assert d.receive(old, now=10.0)
    assert d.receive(beat(d, 1, 4, seq=6), now=11.0)
    assert d.receive(old, now=50.0) is False  # an eavesdropper replays rank 1's old beat
    assert d.ranks[1].heard_at == 11.0 and d.ranks[1].count == 4 and d.dropped == 1


def test_the_real_listener_survives_hostile_datagrams_and_still_names_the_stopped_rank():
    """Fault 14 of #27: one stray datagram killed rank 0's listener, and a later hang named
    healthy ranks as stopped. Every hostile datagram goes to a real socket; then ranks 1
    and 3 beat on, rank 2 falls silent: the verdict names rank 2 alone, and the count of
    dropped datagrams."""
    d = dog()
    d.count, d.section_label = 7, "interconnect allreduce-1MiB-fp32"
    fake_now = [80.0]
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    listener = watchdog.listen(d, sock, clock=lambda: fake_now[0])
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    port = sock.getsockname()[1]

    def send_and_wait(data: bytes, accepted_before: int) -> None:
        sender.sendto(data, ("127.0.0.1", port))
        deadline = time.monotonic() + 30
        while sum(s.seq > 0 for s in d.ranks) + d.dropped == accepted_before and time.monotonic() < deadline:
            time.sleep(0.005)

    try:
        send_and_wait(beat(d, 2, 7), 0)  # rank 2's last word, at t=80
        for i, data in enumerate(v for k, v in HOSTILE.items() if k != "too long"):
            send_and_wait(data, 1 + i)
        sender.sendto(HOSTILE["too long"], ("127.0.0.1", port))
        fake_now[0] = 100.0
        for r in (1, 3):
            seen = d.ranks[r].heard_at
            sender.sendto(beat(d, r, 7), ("127.0.0.1", port))
            deadline = time.monotonic() + 30
            while d.ranks[r].heard_at == seen and time.monotonic() < deadline:
                time.sleep(0.005)
        assert listener.is_alive()
        message = d.verdict(now=100.0, stalled_s=12.0)
    finally:
        d.stop()
        sender.close()
    assert "rank(s) 2 (h2) stopped answering" in message, message
    assert "h1" not in message and "h3" not in message, message
    assert d.dropped == len(HOSTILE), (d.dropped, message)
    assert f"{len(HOSTILE)} datagram(s) on the watchdog port were not this run's heartbeats" in message
    sock.close()


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
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
                            env=clean_env(AIBENCH_TEST_FAULT="mpi:hang"))
    held = set()  # the MPICH and hydra files of this job, which the abort must not leave
    while proc.poll() is None and time.monotonic() - started < 240:
        held |= set(leftovers.mpi_files_held_under(proc.pid))
        time.sleep(0.2)
    _, stderr = proc.communicate(timeout=60)
    took = time.monotonic() - started
    assert proc.returncode == watchdog.EXIT_COLLECTIVE_TIMEOUT, stderr[-2000:]
    assert "collective timeout" in stderr and "rank(s) 1 (" in stderr, stderr[-2000:]
    assert "interconnect allreduce-1KiB-fp32 [mpi]" in stderr
    doc = RunDocument.load(out)
    assert doc.status == "failed" and "rank(s) 1 (" in doc.ended_by
    assert took < 120, f"the run took {took:.0f} s to end"
    time.sleep(0.5)
    left = [p.info for p in psutil.process_iter(["pid", "cmdline"])
            if p.info["cmdline"] and str(out) in " ".join(p.info["cmdline"])]
    assert not left, f"processes left behind: {left}"
    assert any(f.startswith("/dev/shm/mpich_") for f in held), held
    assert not [f for f in held if os.path.exists(f)], "the aborted job's files were left"


def test_a_wait_inside_a_case_section_keeps_the_case_named_and_counts_its_steps(monkeypatch):
    """mpi.agree waits in a section of its own; inside a case's section it must keep the
    case's label (the verdict names the case) and count its entry and exit as progress."""
    dog = watchdog.Watchdog(0, 2, ["a", "b"], 10.0, bytes(watchdog.KEY_SIZE),
                            ranks=[watchdog.RankState(), watchdog.RankState()])
    monkeypatch.setattr(watchdog, "_DOG", dog)
    with watchdog.section("interconnect allreduce-4KiB-fp32"):
        before = dog.count
        with watchdog.section("agreeing on a stage's outcome"):
            assert dog.section_label == "interconnect allreduce-4KiB-fp32"
        assert dog.section_label == "interconnect allreduce-4KiB-fp32" and dog.count == before + 2
    assert dog.section_label is None
    with watchdog.section("agreeing on a stage's outcome"):  # alone, it is a section itself
        assert dog.section_label == "agreeing on a stage's outcome"
    assert dog.section_label is None
