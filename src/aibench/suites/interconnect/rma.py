"""aibench's own all-reduce over MPI one-sided communication (RDMA style).

Every rank allocates one window with MPI.Win.Allocate on the run's communicator; the
all-reduce result lives in it (a caller hands it out as the receive buffer, like a
registered / symmetric buffer of NCCL or NVSHMEM). Data moves only by Put into a peer's
window; the local sum is aibench's SIMD kernel (_core.reduce_sum). Window layout, the
same on every rank (byte offsets):

    flags   one int64 arrival counter per source rank (passive-target mode)
    result  count elements: the all-reduce output (and the input when in place)
    fold    count elements: where a folded-in extra rank's vector lands (non-powers of two)
    slots   [2 parities][steps] scratch slots that peers Put partial vectors into

Algorithms (p ranks, n bytes; alpha latency, beta time per byte):
  ring                    reduce-scatter then all-gather around a ring, chunks of n/p:
                          2(p-1) alpha + 2n(p-1)/p beta (bandwidth-optimal).
  recursive-doubling      lg p exchanges of the whole vector: lg p alpha + n lg p beta
                          (latency-bound small messages).
  rabenseifner            recursive-halving reduce-scatter then recursive-doubling
                          all-gather: 2 lg p alpha + 2n(p-1)/p beta.
Any rank count: for recursive doubling and Rabenseifner, with p' the largest power of
two <= p and r = p - p', the first 2r ranks pair up: each even rank Puts its vector into
its odd neighbour's fold slot and sits out; the p' remaining ranks run the power-of-two
algorithm; the odd ranks Put the result back into their even neighbour's result (the
MPICH fold-in). Any element count: chunks and halves differ by at most one element and
may be empty (count < p).

Completion (the `sync` of the impl name):
  flush   passive target: Lock_all(MODE_NOCHECK) once for the window's life. A sender
          does Put, Flush(target) (the data is in the target's memory), then atomically
          increments the target's arrival counter for its rank (Accumulate SUM + Flush).
          A receiver polls its own counter with Fetch_and_op(NO_OP) (an MPI atomic read
          that also drives progress) until it reaches the count it expects from that
          source, then Win.Sync() before reading. Counters only grow, so there is nothing
          to reset between calls.
  fence   active target: every step is Put ... Fence (collective over the window).
Scratch slots alternate between two parities on successive calls: a fast peer may start
call i+1 (and Put into a slot) before a slow rank has reduced call i's data from the same
step; it cannot start call i+2 before the slow rank has contributed to call i+1, which
the slow rank does only after finishing call i. Puts into a peer's result region need no
parity: every output depends on every rank's input of the same call.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ... import _core
from ...dtypes import poison
from .common import FORMATS, ceil_div, chunk_bounds, log2_floor

ALGORITHMS = ("ring", "recursive-doubling", "rabenseifner")
SYNCS = ("flush", "fence")
DESCRIPTIONS = {
    "ring": "ring reduce-scatter + all-gather (bandwidth-optimal)",
    "recursive-doubling": "recursive doubling (latency-bound sizes)",
    "rabenseifner": "Rabenseifner: recursive-halving reduce-scatter + recursive-doubling all-gather",
}
_ALIGN = 64



def _align(n: int) -> int:
    return ceil_div(n, _ALIGN) * _ALIGN


@dataclass
class Put:
    target: int
    origin: np.ndarray  # a view of local memory
    disp: int  # byte offset in the target's window


@dataclass
class Step:
    puts: list[Put] = field(default_factory=list)
    waits: list[int] = field(default_factory=list)  # sources whose arrival counter to wait on
    # (dst, a, src): dst = a + src (a None: dst += src), after the step's data arrived.
    reduces: list[tuple[np.ndarray, np.ndarray | None, np.ndarray]] = field(default_factory=list)
    copies: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)  # (dst, src)


def fold_ranks(rank: int, size: int) -> tuple[int, int, int]:
    """(p', rem, newrank) of the MPICH fold-in: newrank -1 for an even rank that sits out."""
    pof2 = 1 << log2_floor(size)
    rem = size - pof2
    if rank < 2 * rem:
        newrank = rank // 2 if rank % 2 else -1
    else:
        newrank = rank - rem
    return pof2, rem, newrank


def real_rank(newrank: int, rem: int) -> int:
    return 2 * newrank + 1 if newrank < rem else newrank + rem


def window_layout(algorithm: str, count: int, itemsize: int, size: int) -> dict[str, int]:
    """Byte offsets and sizes of the window regions (identical on every rank)."""
    nbytes = count * itemsize
    pof2, rem, _ = fold_ranks(0, size)
    lg = log2_floor(pof2)
    if algorithm == "ring":
        slot_sizes = [ceil_div(count, size) * itemsize] * max(0, size - 1)
        fold = 0
    elif algorithm == "recursive-doubling":
        slot_sizes = [nbytes] * lg
        fold = nbytes if rem else 0
    elif algorithm == "rabenseifner":
        slot_sizes = [ceil_div(count, 2 ** (k + 1)) * itemsize for k in range(lg)]
        fold = nbytes if rem else 0
    else:
        raise ValueError(f"unknown RMA all-reduce algorithm {algorithm!r}")
    layout = {"flags": 0, "flags_bytes": _align(8 * size)}
    at = layout["flags_bytes"]
    layout["result"] = at
    at += _align(nbytes)
    layout["fold"] = at
    at += _align(fold)
    slots = []
    for _parity in range(2):
        row = []
        for s in slot_sizes:
            row.append(at)
            at += _align(s)
        slots.append(row)
    layout["total"] = max(at, _ALIGN)
    layout["slots"] = slots  # type: ignore[assignment]
    return layout


def window_bytes(algorithm: str, count: int, itemsize: int, size: int) -> int:
    return window_layout(algorithm, count, itemsize, size)["total"]


class RmaAllreduce:
    """One prepared all-reduce of `count` elements over `comm` (collective to build and to
    close). `result` is the output (the window's result region); `send` the input (the
    same array when in place). run() does one all-reduce."""

    def __init__(self, comm, count: int, dtype: str, inplace: bool, algorithm: str, sync: str,
                 reduce: Callable | None = None, skip_reductions: bool = False):
        from mpi4py import MPI

        if algorithm not in ALGORITHMS or sync not in SYNCS:
            raise ValueError(f"unknown RMA all-reduce {algorithm!r} with sync {sync!r}")
        self.MPI = MPI
        self.comm, self.count, self.dtype, self.inplace = comm, count, dtype, inplace
        self.algorithm, self.sync = algorithm, sync
        self.rank, self.size = comm.Get_rank(), comm.Get_size()
        fmt = FORMATS[dtype]
        self.itemsize = fmt.itemsize
        self.move_type = {"fp32": MPI.FLOAT, "fp64": MPI.DOUBLE, "bf16": MPI.UINT16_T, "fp16": MPI.UINT16_T}[dtype]
        self.layout = window_layout(algorithm, count, fmt.itemsize, self.size)
        self._kernel = reduce or _core.reduce_sum
        if skip_reductions and self.rank == 0:  # a test's fault (faults.py, kind reduce)
            self._kernel = lambda dst, src, dtype, a=None: None  # a wrong (missing) reduction

        info = MPI.Info.Create()
        info.Set("same_size", "true")
        info.Set("same_disp_unit", "true")
        if sync == "fence":
            info.Set("no_locks", "true")
        self.win = MPI.Win.Allocate(self.layout["total"], disp_unit=1, info=info, comm=comm)
        info.Free()
        self.mem = np.frombuffer(self.win.tomemory(), dtype=np.uint8)
        lay = self.layout
        self.flags = self.mem[: 8 * self.size].view(np.int64)
        self.result = self._region(lay["result"], count)
        self.fold = self._region(lay["fold"], count)
        self.send = self.result if inplace else np.empty(count, dtype=fmt.storage)
        self.flags[:] = 0
        self.expected = np.zeros(self.size, dtype=np.int64)  # arrivals seen per source
        self._one = np.ones(1, dtype=np.int64)
        self._fetched = np.zeros(1, dtype=np.int64)
        comm.Barrier()  # every counter is zero before any rank may increment one
        if sync == "flush":
            self.win.Lock_all(MPI.MODE_NOCHECK)
        else:
            self.win.Fence(MPI.MODE_NOPRECEDE)
        self.schedules = [self._schedule(parity) for parity in (0, 1)]
        self.calls = 0
        self.steps_per_call = len(self.schedules[0])

    # ---- window regions ---------------------------------------------------------------
    def _region(self, offset: int, count: int) -> np.ndarray:
        return self.mem[offset: offset + count * self.itemsize].view(FORMATS[self.dtype].storage)

    def _slot(self, parity: int, step: int, count: int) -> tuple[np.ndarray, int]:
        offset = self.layout["slots"][parity][step]
        return self._region(offset, count), offset

    def _result_disp(self, start: int) -> int:
        return self.layout["result"] + start * self.itemsize

    # ---- schedules ------------------------------------------------------------------------
    def _schedule(self, parity: int) -> list[Step]:
        if self.size == 1:
            return [Step(copies=[] if self.inplace else [(self.result, self.send)])]
        if self.algorithm == "ring":
            return self._ring(parity)
        return self._power_of_two(parity)

    def _ring(self, parity: int) -> list[Step]:
        p, r = self.size, self.rank
        right, left = (r + 1) % p, (r - 1) % p
        chunks = chunk_bounds(self.count, p)
        res, send = self.result, self.send
        steps: list[Step] = []
        # Reduce-scatter: at step s send chunk r-s (own input at s = 0, the partial sum
        # after), receive chunk r-s-1 into slot s and add the own input of that chunk.
        for s in range(p - 1):
            cs, cr = chunks[(r - s) % p], chunks[(r - s - 1) % p]
            origin = (send if s == 0 else res)[cs[0]:cs[1]]
            _, disp = self._slot(parity, s, 0)
            slot, _ = self._slot(parity, s, cr[1] - cr[0])
            dst = res[cr[0]:cr[1]]
            a = None if self.inplace else send[cr[0]:cr[1]]
            steps.append(Step(puts=[Put(right, origin, disp)], waits=[left], reduces=[(dst, a, slot)]))
        # All-gather: rank r owns chunk r+1; at step s send chunk r+1-s straight into the
        # right neighbour's result, receive chunk r-s into the own result.
        for s in range(p - 1):
            cs = chunks[(r + 1 - s) % p]
            steps.append(Step(puts=[Put(right, res[cs[0]:cs[1]], self._result_disp(cs[0]))], waits=[left]))
        return steps

    def _power_of_two(self, parity: int) -> list[Step]:
        p, r = self.size, self.rank
        pof2, rem, newrank = fold_ranks(r, p)
        lg = log2_floor(pof2)
        res, send = self.result, self.send
        steps: list[Step] = []
        cur = send  # the vector this rank contributes from (the input until it has a partial sum)
        if rem:
            fold = Step()
            if r < 2 * rem and r % 2 == 0:
                fold.puts.append(Put(r + 1, send, self.layout["fold"]))
            elif r < 2 * rem:
                fold.waits.append(r - 1)
                fold.reduces.append((res, None if self.inplace else send, self.fold))
                cur = res
            steps.append(fold)

        if self.algorithm == "recursive-doubling":
            for k in range(lg):
                step = Step()
                if newrank >= 0:
                    peer = real_rank(newrank ^ (1 << k), rem)
                    slot, disp = self._slot(parity, k, self.count)
                    step.puts.append(Put(peer, cur, disp))
                    step.waits.append(peer)
                    step.reduces.append((res, None if cur is res else cur, slot))
                    cur = res
                steps.append(step)
        else:  # Rabenseifner
            lo, hi = 0, self.count
            kept: list[tuple[int, int]] = []
            for k in range(lg):  # recursive halving reduce-scatter
                step = Step()
                if newrank >= 0:
                    peer = real_rank(newrank ^ (1 << k), rem)
                    mid = lo + (hi - lo) // 2
                    keep, give = ((lo, mid), (mid, hi)) if not newrank & (1 << k) else ((mid, hi), (lo, mid))
                    _, disp = self._slot(parity, k, 0)
                    slot, _ = self._slot(parity, k, keep[1] - keep[0])
                    step.puts.append(Put(peer, cur[give[0]:give[1]], disp))
                    step.waits.append(peer)
                    a = None if cur is res else cur[keep[0]:keep[1]]
                    step.reduces.append((res[keep[0]:keep[1]], a, slot))
                    cur = res
                    kept.append(keep)
                    lo, hi = keep
                steps.append(step)
            for k in reversed(range(lg)):  # recursive doubling all-gather
                step = Step()
                if newrank >= 0:
                    peer = real_rank(newrank ^ (1 << k), rem)
                    own = kept[k]
                    step.puts.append(Put(peer, res[own[0]:own[1]], self._result_disp(own[0])))
                    step.waits.append(peer)
                steps.append(step)

        if rem:
            unfold = Step()
            if r < 2 * rem and r % 2 == 1:
                unfold.puts.append(Put(r - 1, res, self._result_disp(0)))
            elif r < 2 * rem:
                unfold.waits.append(r + 1)
            steps.append(unfold)
        return steps

    # ---- one all-reduce ---------------------------------------------------------------------
    def run(self) -> None:
        steps = self.schedules[self.calls & 1]
        self.calls += 1
        kernel, dtype = self._kernel, self.dtype
        if self.sync == "fence":
            win, move = self.win, self.move_type
            for step in steps:
                for put in step.puts:
                    if put.origin.size:
                        win.Put([put.origin, move], put.target, [put.disp, put.origin.size, move])
                win.Fence()
                for dst, a, src in step.reduces:
                    kernel(dst, src, dtype, a=a)
                for dst, src in step.copies:
                    dst[...] = src
            return
        for step in steps:
            for put in step.puts:
                self._put_notify(put)
            for source in step.waits:
                self._wait(source)
            for dst, a, src in step.reduces:
                kernel(dst, src, dtype, a=a)
            for dst, src in step.copies:
                dst[...] = src

    def _put_notify(self, put: Put) -> None:
        win, MPI = self.win, self.MPI
        if put.origin.size:
            win.Put([put.origin, self.move_type], put.target, [put.disp, put.origin.size, self.move_type])
            win.Flush(put.target)
        win.Accumulate([self._one, MPI.INT64_T], put.target, [8 * self.rank, 1, MPI.INT64_T], MPI.SUM)
        win.Flush(put.target)

    def _wait(self, source: int) -> None:
        self.expected[source] += 1
        want = self.expected[source]
        win, MPI, fetched, me = self.win, self.MPI, self._fetched, self.rank
        disp = 8 * source
        origin, result = [self._one, MPI.INT64_T], [fetched, MPI.INT64_T]
        while True:
            win.Fetch_and_op(origin, result, me, disp, MPI.NO_OP)
            win.Flush(me)
            if fetched[0] >= want:
                break
            os.sched_yield()  # ranks may share cores (oversubscribed runs)
        win.Sync()

    # ---- checked runs -------------------------------------------------------------------------
    def poison(self) -> None:
        """NaN in the result (out of place) and in every scratch slot and the fold slot.
        Collective: no rank may still be writing into a peer when this runs."""
        self.comm.Barrier()
        if not self.inplace:
            poison(self.result, self.dtype)
        lay = self.layout
        if lay["fold"] < lay["total"]:
            scratch = self.mem[lay["fold"]: lay["total"]]
            usable = scratch.size // self.itemsize * self.itemsize
            poison(scratch[:usable].view(FORMATS[self.dtype].storage), self.dtype)
        if self.sync == "flush":
            self.win.Sync()  # local stores to window memory, before peers access it
        self.comm.Barrier()

    def local_writes_done(self) -> None:
        """Collective: local stores into window memory are visible before any peer's
        next access (Win.Sync is the memory barrier of the unified model)."""
        if self.sync == "flush":
            self.win.Sync()
        self.comm.Barrier()

    def detail(self) -> dict:
        return {"algorithm": self.algorithm, "sync": self.sync, "window_bytes": self.layout["total"],
                "steps_per_call": self.steps_per_call,
                "window": "MPI.Win.Allocate(comm=run communicator, disp_unit=1)",
                "completion": ("Lock_all(MODE_NOCHECK); Put + Flush + Accumulate(counter) + Flush; "
                               "receiver polls Fetch_and_op(NO_OP)") if self.sync == "flush" else "Put + Fence per step",
                "reduce_isa": _core.reduce_best_isa(),
                "fold_in": fold_ranks(self.rank, self.size)[1] > 0 and self.algorithm != "ring"}

    def close(self) -> None:
        """Collective."""
        if self.win is None:
            return
        if self.sync == "flush":
            self.win.Unlock_all()
        else:
            self.win.Fence(self.MPI.MODE_NOSUCCEED)
        self.mem = self.result = self.fold = self.flags = None  # type: ignore[assignment]
        self.send = None  # type: ignore[assignment]
        self.schedules = []
        self.win.Free()
        self.win = None
