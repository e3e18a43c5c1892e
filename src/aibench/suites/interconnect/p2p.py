"""The point-to-point link matrix: bandwidth and latency between every pair of nodes (or
of ranks, when the run has one node), so that a slow link stands out.

Participants: the lowest rank of each node when there are several nodes, else every rank.
Pairs are measured in the rounds of a round-robin tournament (circle method): in each
round disjoint pairs run at the same time, so each node's NIC carries one pair; the other
ranks wait in a sleeping barrier. For a pair (a, b):
  latency    ping-pong of 8 bytes (osu_latency): one-way = round trip / 2, per iteration.
  bandwidth  osu_bw: a window of W non-blocking sends of `size` bytes (Isend/Irecv into W
             distinct buffers), Waitall, then a 4-byte acknowledgement; a->b then b->a.
             W = min(64, max(1, 64 MiB / size)).
After the bandwidth runs the receiver checks every byte of every buffer of the last window.
A link is flagged slow below SLOW_FRACTION x the median bandwidth (or above median
latency / SLOW_FRACTION).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ... import watchdog
from ...errors import SkipCase
from ...faults import corrupts_output
from ...mpi import Session, idle_barrier
from ...results import FAILED, PASSED, Samples, Validation
from ..base import Impl, RunContext
from ...units import MiB
from .common import RUN_SESSION

SLOW_FRACTION = 0.8
LAT_BYTES = 8
_TAG_LAT, _TAG_BW, _TAG_ACK, _TAG_CTL = 701, 702, 703, 704


def tournament(n: int) -> list[list[tuple[int, int]]]:
    """Rounds of disjoint pairs covering every pair of 0..n-1 exactly once."""
    players: list[int | None] = list(range(n))
    if n % 2:
        players.append(None)
    m = len(players)
    rounds = []
    for _ in range(m - 1):
        pairs = []
        for i in range(m // 2):
            a, b = players[i], players[m - 1 - i]
            if a is not None and b is not None:
                pairs.append((min(a, b), max(a, b)))
        rounds.append(pairs)
        players = [players[0], players[-1], *players[1:-1]]
    return rounds


def participants(session: Session) -> list[int]:
    nodes = session.node_ranks()
    if len(nodes) > 1:
        return [ranks[0] for ranks in nodes.values()]
    return list(range(session.size))


def _pattern(rank: int, nbytes: int) -> np.ndarray:
    return ((np.arange(nbytes, dtype=np.int64) * 7 + rank * 31 + 1) % 251).astype(np.uint8)


@dataclass
class LinkResult:
    src: int
    dst: int
    gbps: float
    window_times_s: list[float]
    wrong_bytes: int


def _latency(comm, me: int, peer: int, first: bool, iters: int, warmup: int) -> list[float]:
    """One-way latency samples (seconds) measured on the first rank of the pair."""
    from mpi4py import MPI

    buf = np.zeros(LAT_BYTES, dtype=np.uint8)
    msg = [buf, MPI.BYTE]
    wtime = MPI.Wtime
    samples = []
    for i in range(warmup + iters):
        if first:
            t0 = wtime()
            comm.Send(msg, peer, _TAG_LAT)
            comm.Recv(msg, peer, _TAG_LAT)
            if i >= warmup:
                samples.append((wtime() - t0) / 2)
        else:
            comm.Recv(msg, peer, _TAG_LAT)
            comm.Send(msg, peer, _TAG_LAT)
    return samples


def _bandwidth(comm, me: int, peer: int, sender: bool, nbytes: int, budget_s: float,
               min_iters: int) -> LinkResult | None:
    """osu_bw from `sender` to its peer; the sender returns the timing, the receiver the
    count of wrong bytes (in a LinkResult with gbps 0)."""
    from mpi4py import MPI

    window = int(min(64, max(1, (64 * MiB) // nbytes)))
    ack = np.zeros(1, dtype=np.int32)
    wtime = MPI.Wtime
    if sender:
        data = _pattern(me, nbytes)

        def one_window() -> float:
            t0 = wtime()
            MPI.Request.Waitall([comm.Isend([data, MPI.BYTE], peer, _TAG_BW) for _ in range(window)])
            comm.Recv([ack, MPI.INT], peer, _TAG_ACK)
            return wtime() - t0

        warm = min(one_window() for _ in range(2))
        iters = int(max(min_iters, min(100, budget_s / max(warm, 1e-9))))
        comm.Send([np.array([iters], dtype=np.int64), MPI.INT64_T], peer, _TAG_CTL)
        times = [one_window() for _ in range(iters)]
        med = float(np.median(times))
        return LinkResult(me, peer, window * nbytes / med / 1e9, times, 0)
    bufs = np.full((window, nbytes), 0xFF, dtype=np.uint8)  # 0xFF is not in the pattern

    def receive_window() -> None:
        MPI.Request.Waitall([comm.Irecv([bufs[i], MPI.BYTE], peer, _TAG_BW) for i in range(window)])
        comm.Send([ack, MPI.INT], peer, _TAG_ACK)

    for _ in range(2):
        receive_window()
    count = np.zeros(1, dtype=np.int64)
    comm.Recv([count, MPI.INT64_T], peer, _TAG_CTL)
    bufs.fill(0xFF)
    for _ in range(int(count[0])):
        receive_window()
    want = _pattern(peer, nbytes)
    if corrupts_output("mpi"):  # tests: one received byte wrong, after the transfer
        bufs.reshape(-1)[0] ^= 0xFF
    wrong = int(np.count_nonzero(bufs != want[None, :]))
    return LinkResult(peer, me, 0.0, [], wrong)


def link_matrix(session: Session, nbytes: int, budget_s: float, min_iters: int,
                schedule: list[list[tuple[int, int]]] | None = None) -> dict | None:
    """Collective. Returns (on rank 0) the matrices and the flagged links, else None.
    `schedule`: the rounds of pairs (participant indices) to measure; default every pair."""
    comm, me = session.comm, session.rank
    ranks = participants(session)
    index = {r: i for i, r in enumerate(ranks)}
    lat_iters = int(max(50, min(1000, 100 * budget_s)))
    mine: list[dict] = []
    schedule = tournament(len(ranks)) if schedule is None else schedule
    for pairs in schedule:
        idle_barrier(comm)
        watchdog.progress()  # every rank, each round (the pairs' own loops differ by rank)
        for a, b in pairs:
            ra, rb = ranks[a], ranks[b]
            if me not in (ra, rb):
                continue
            peer = rb if me == ra else ra
            first = me == ra
            lat = _latency(comm, me, peer, first, lat_iters, warmup=max(10, lat_iters // 10))
            if first:
                mine.append({"kind": "lat", "a": ra, "b": rb, "samples": lat})
            for sender in (ra, rb):  # a->b, then b->a
                res = _bandwidth(comm, me, peer, me == sender, nbytes, budget_s / 2, min_iters)
                if me == sender:
                    mine.append({"kind": "bw", "src": res.src, "dst": res.dst, "gbps": res.gbps,
                                 "times": res.window_times_s})
                else:
                    mine.append({"kind": "check", "src": res.src, "dst": res.dst, "wrong": res.wrong_bytes})
    gathered = comm.gather(mine, root=0)
    if me != 0:
        return None
    n = len(ranks)
    bw: list[list[float | None]] = [[None] * n for _ in range(n)]
    lat_p50: list[list[float | None]] = [[None] * n for _ in range(n)]
    lat_p99: list[list[float | None]] = [[None] * n for _ in range(n)]
    times: dict[tuple[int, int], list[float]] = {}
    wrong: dict[tuple[int, int], int] = {}
    for item in (x for part in gathered for x in part):
        if item["kind"] == "lat":
            i, j = index[item["a"]], index[item["b"]]
            p50, p99 = (float(np.percentile(item["samples"], q)) * 1e6 for q in (50, 99))
            lat_p50[i][j] = lat_p50[j][i] = p50
            lat_p99[i][j] = lat_p99[j][i] = p99
        elif item["kind"] == "bw":
            i, j = index[item["src"]], index[item["dst"]]
            bw[i][j] = item["gbps"]
            times[(i, j)] = item["times"]
        else:
            wrong[(index[item["src"]], index[item["dst"]])] = item["wrong"]
    links = [(i, j, bw[i][j]) for i in range(n) for j in range(n) if bw[i][j] is not None]
    pairs_lat = [(i, j, lat_p50[i][j]) for i in range(n) for j in range(i + 1, n) if lat_p50[i][j] is not None]
    median_bw = float(np.median([g for _, _, g in links])) if links else math.nan
    median_lat = float(np.median([v for _, _, v in pairs_lat])) if pairs_lat else math.nan
    hosts = session.hosts
    label = [f"{hosts[r]}:{r}" for r in ranks]
    slow = [{"src": label[i], "dst": label[j], "gbps": g, "fraction_of_median": g / median_bw}
            for i, j, g in links if median_bw > 0 and g < SLOW_FRACTION * median_bw]
    slow_lat = [{"a": label[i], "b": label[j], "lat_p50_us": v, "times_median": v / median_lat}
                for i, j, v in pairs_lat if median_lat > 0 and v > median_lat / SLOW_FRACTION]
    weakest = min(links, key=lambda x: x[2]) if links else None
    return {
        "participants": label,
        "scope": "nodes (lowest rank of each)" if len(session.node_ranks()) > 1 else "ranks on one node",
        "bandwidth_bytes": nbytes, "window": int(min(64, max(1, (64 * MiB) // nbytes))),
        "latency_bytes": LAT_BYTES, "latency_iterations": lat_iters,
        "bw_gbps": bw, "lat_p50_us": lat_p50, "lat_p99_us": lat_p99,
        "median_gbps": median_bw, "median_lat_p50_us": median_lat,
        "slow_fraction": SLOW_FRACTION, "slow_links": slow, "slow_latency_pairs": slow_lat,
        "weakest": None if weakest is None else {"src": label[weakest[0]], "dst": label[weakest[1]], "gbps": weakest[2]},
        "weakest_window_times_s": times.get((weakest[0], weakest[1]), []) if weakest else [],
        "wrong_bytes": int(sum(wrong.values())),
        "wrong_links": [f"{label[i]}->{label[j]}" for (i, j), w in wrong.items() if w],
        "rounds": len(schedule),
    }


class P2pMatrix(Impl):
    """The link matrix as the operation of a p2p case (impl `mpi`, the library's
    point-to-point): measured collectively, the same figures on every rank."""

    def __init__(self, params: dict[str, Any], ctx: RunContext):
        session = ctx.resource(RUN_SESSION)
        if len(participants(session)) < 2:
            raise SkipCase("the p2p matrix needs at least 2 ranks")
        self.session, self.nbytes = session, params["size"]

    def measure(self, policy) -> Samples:
        from .measure import min_iterations

        budget = policy.budget_s
        matrix = link_matrix(self.session, self.nbytes, budget, min_iterations(budget))
        self.matrix = self.session.comm.bcast(matrix, root=0)
        times = self.matrix.pop("weakest_window_times_s")
        return Samples(samples_s=times, number=1, warmup_reps=2, stopped_by="iterations",
                       what="seconds per window of the weakest link")

    def check(self) -> Validation:
        if self.matrix["wrong_bytes"]:
            return Validation(status=FAILED, tolerance=0.0,
                              reason=f"wrong data: {self.matrix['wrong_bytes']} byte(s) received wrong on "
                                     f"{', '.join(self.matrix['wrong_links'])}")
        return Validation(status=PASSED, max_rel_error=0.0, tolerance=0.0)

    def detail(self) -> dict:
        if not hasattr(self, "matrix"):
            return {}
        slow = [f"{s['src']}->{s['dst']} {s['fraction_of_median']:.2f}x" for s in self.matrix["slow_links"]]
        return {"p2p": self.matrix, **({"note": "slow links: " + ", ".join(slow)} if slow else {})}
