"""Timing of a collective across ranks, in one of two styles (TIMINGS):

  pipelined  back-to-back calls after one barrier, an MPI.Wtime stamp after each; a
             rank's time is (end - start) / count, as IMB-MPI1 with `-sync off` and
             nccl-tests time it (calls may overlap their neighbours: a rank that
             finishes early starts the next call at once).
  barrier    a barrier before every call and MPI.Wtime around the call alone; a rank's
             time is the mean of its per-call times, as osu_allreduce (and IMB-MPI1 with
             its default `-sync on`) time it: every call starts from synchronised ranks.

Iterations follow the Intel MPI Benchmarks rule, min(1000, 40 MiB / size), at least
`min_iters`, then cut so that the timed loop stays under the per-size time cap. Warm-up:
a tenth of that (at least 2), as OSU does, in the same style as the timed loop. The
per-iteration time of the slowest rank is the element-wise maximum over ranks of each
rank's per-iteration durations; the reported time (nccl-tests) is the slowest rank's
average, and every rank's average is kept (IMB's t_min / t_avg / t_max).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ... import watchdog
from ...results import Samples
from ...units import MiB

IMB_BYTES = 40 * MiB
MAX_ITERS = 1000
TIMINGS = ("pipelined", "barrier")
DEFAULT_TIMING = "pipelined"
# The standard tools that time a collective the same way (recorded beside each figure).
TIMING_LIKE = {"pipelined": "nccl-tests; IMB-MPI1 with -sync off",
               "barrier": "osu_allreduce; IMB-MPI1 with its default -sync on"}


@dataclass
class CollectiveTiming:
    iters: int
    warmup: int
    stopped_by: str  # "iterations" (the IMB count) or "time_cap"
    samples: np.ndarray  # seconds per iteration of the slowest rank, in order
    rank_avg: list[float] = field(default_factory=list)  # each rank's average (root only)
    timing: str = DEFAULT_TIMING  # the style that ran (TIMINGS)

    @property
    def time_s(self) -> float:
        """The slowest rank's average per iteration."""
        return max(self.rank_avg) if self.rank_avg else float(np.mean(self.samples))

    def samples_record(self) -> Samples:
        """The samples (Wtime resolution: ns) and each rank's average, as a result keeps them."""
        extra = {}
        if self.rank_avg:
            extra = {"time_avg_s_min_rank": min(self.rank_avg), "time_avg_s_mean_rank": float(np.mean(self.rank_avg)),
                     "time_avg_s_max_rank": max(self.rank_avg)}
        return Samples(samples_s=[round(float(x), 9) for x in self.samples], number=1, warmup_reps=self.warmup,
                       stopped_by=self.stopped_by, extra=extra)


def planned_iterations(nbytes: int, min_iters: int, max_iters: int = MAX_ITERS) -> int:
    return min(max_iters, max(min_iters, IMB_BYTES // max(1, nbytes)))


def max_iterations(budget_s: float) -> int:
    """Most timed iterations per size: 200 with the quick tier's 1 s cap, else IMB's 1000."""
    return 200 if budget_s <= 1.0 else MAX_ITERS


def min_iterations(budget_s: float) -> int:
    """Fewest timed iterations per size: 10 with the quick tier's 1 s cap, 30 standard,
    50 full."""
    return int(max(5, min(50, round(10 * budget_s))))


def _pipelined(comm, op: Callable[[], None], iters: int, wtime) -> np.ndarray:
    """Per-call durations of `iters` back-to-back calls (one barrier before the loop)."""
    stamps = np.empty(iters + 1)
    comm.Barrier()
    stamps[0] = wtime()
    for i in range(1, iters + 1):
        op()
        stamps[i] = wtime()
    return np.diff(stamps)


def _barrier_separated(comm, op: Callable[[], None], iters: int, wtime) -> np.ndarray:
    """Per-call durations of `iters` calls, each timed alone after a barrier (OSU)."""
    durations = np.empty(iters)
    barrier = comm.Barrier
    for i in range(iters):
        barrier()
        t0 = wtime()
        op()
        durations[i] = wtime() - t0
    return durations


_LOOPS = {"pipelined": _pipelined, "barrier": _barrier_separated}


def time_collective(comm, op: Callable[[], None], nbytes: int, budget_s: float, min_iters: int,
                    max_iters: int = MAX_ITERS, timing: str = DEFAULT_TIMING) -> CollectiveTiming:
    """Collective: every rank calls it with the same arguments (and the same timing)."""
    from mpi4py import MPI

    if timing not in _LOOPS:
        raise ValueError(f"unknown collective timing {timing!r} (known: {', '.join(TIMINGS)})")
    loop = _LOOPS[timing]
    wtime = MPI.Wtime
    iters = planned_iterations(nbytes, min_iters, max_iters)
    warmup = max(2, iters // 10)
    watchdog.progress()  # the watchdog sees every rank pass each loop (watchdog.py)
    best = float(np.min(loop(comm, op, warmup, wtime), initial=math.inf))
    watchdog.progress()
    slowest = comm.allreduce(best, op=MPI.MAX)  # the same value, so the same count, everywhere
    stopped_by = "iterations"
    if slowest * iters > budget_s:
        iters = max(min_iters, int(budget_s / max(slowest, 1e-9)))
        stopped_by = "time_cap"

    per_iter = loop(comm, op, iters, wtime)
    watchdog.progress()
    slowest_per_iter = np.empty_like(per_iter)
    comm.Allreduce(per_iter, slowest_per_iter, op=MPI.MAX)
    # pipelined: (end - start) / count; barrier: the mean of the calls' own times.
    avgs = comm.gather(float(np.sum(per_iter)) / iters, root=0)
    return CollectiveTiming(iters=iters, warmup=warmup, stopped_by=stopped_by, samples=slowest_per_iter,
                            rank_avg=list(avgs) if avgs else [], timing=timing)
