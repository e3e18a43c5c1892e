"""What every all-reduce implementation shares: the impl contract (AllreduceImpl: how an
all-reduce is timed and checked, the same for every algorithm), element formats,
message sizes, the seeded exact-integer inputs and the count of wrong elements after a
checked run."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ... import mpi
from ...dtypes import FORMATS as ALL_FORMATS, encode, poison
from ...faults import corrupt, fault_for
from ...results import FAILED, PASSED, Samples, Validation
from ...units import size_label
from ..base import Impl, RunContext

DTYPES = ("fp32", "fp64", "bf16", "fp16")
MIN_SIZE = 8


FORMATS = {name: f for name, f in ALL_FORMATS.items() if name in DTYPES}


def fmt_size(nbytes: int) -> str:
    return size_label(nbytes, iec=True)


def sweep_sizes(max_bytes: int, min_bytes: int = MIN_SIZE) -> list[int]:
    """x2 from min_bytes to max_bytes, as nccl-tests -b 8 -e MAX -f 2."""
    sizes, s = [], min_bytes
    while s <= max_bytes:
        sizes.append(s)
        s *= 2
    return sizes


class ExactInputs:
    """Inputs x[rank, i] = ((i + rank) mod K) - V: small integers seeded by (rank, index),
    so that the sum over ranks is exact in every format and in every order of summation.

    V is chosen so that any partial sum (at most nranks * V in magnitude) is exactly
    representable: V = 4 for fp32/fp64 and for bf16 up to 64 ranks (bf16 holds integers up
    to 256 exactly), smaller for more ranks. The expected sum has a closed form, so the
    check never holds a second full-size array.
    """

    def __init__(self, dtype: str, nranks: int):
        self.dtype, self.nranks = dtype, nranks
        self.amp = max(1, min(4, FORMATS[dtype].exact_int // max(1, nranks)))
        self.k = 2 * self.amp + 1
        k = self.k
        # sum over ranks r < p of ((t + r) mod K), for t = i mod K: full cycles plus a partial run.
        q, m = divmod(nranks, k)
        prefix = np.concatenate([[0], np.cumsum(np.arange(2 * k) % k)])
        t = np.arange(k)
        self.expected_by_t = (q * (k * (k - 1) // 2) + prefix[t + m] - prefix[t] - nranks * self.amp).astype(np.float64)

        # Both patterns repeat every K elements: blocks of a multiple of K are copied and
        # compared block by block (memory speed, no full-size temporaries).
        self.block = k * ceil_div(1 << 18, k)
        self._expected_block = encode(self.expected_by_t[np.arange(self.block) % k], dtype)

    def values(self, rank: int, start: int, stop: int) -> np.ndarray:
        return ((np.arange(start, stop, dtype=np.int64) + rank) % self.k - self.amp).astype(np.float64)

    def fill(self, out: np.ndarray, rank: int) -> None:
        block = encode(self.values(rank, 0, min(self.block, out.size)), self.dtype)
        for start in range(0, out.size, self.block):
            stop = min(out.size, start + self.block)
            out[start:stop] = block[: stop - start]

    def count_wrong(self, result: np.ndarray) -> tuple[int, int | None]:
        """(number of elements that differ from the exact sum, index of the first)."""
        wrong, first = 0, None
        want_block = self._expected_block
        for start in range(0, result.size, self.block):
            stop = min(result.size, start + self.block)
            got, want = result[start:stop], want_block[: stop - start]
            if self.dtype == "bf16":  # bit patterns: +0 and -0 are both a right zero
                bad = (got != want) & ~(((got & 0x7FFF) == 0) & ((want & 0x7FFF) == 0))
            else:
                bad = got != want  # NaN != anything
            n = int(np.count_nonzero(bad))
            if n and first is None:
                first = start + int(np.argmax(bad))
            wrong += n
        return wrong, first


def busbw_factor(nranks: int) -> float:
    """All-reduce bus bandwidth factor 2(n-1)/n (nccl-tests)."""
    return 2.0 * (nranks - 1) / nranks if nranks > 0 else 0.0


def chunk_bounds(count: int, parts: int) -> list[tuple[int, int]]:
    """Split `count` elements into `parts` contiguous chunks whose sizes differ by at most
    one (the first count % parts chunks get the extra element)."""
    base, extra = divmod(count, parts)
    bounds, start = [], 0
    for i in range(parts):
        n = base + (1 if i < extra else 0)
        bounds.append((start, start + n))
        start += n
    return bounds


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def log2_floor(n: int) -> int:
    return int(math.floor(math.log2(n))) if n > 0 else 0


# Host bytes the exact check (ExactInputs) holds at its peak on each rank, whatever the
# message size: its expected block (at most 8 B per value) plus the int64 / float64 steps
# of fill and count_wrong (16 B per value, measured), over blocks of at most 2**18 + K
# values (K <= 9); 32 B per value leaves a margin.
CHECK_BYTES = 32 * ((1 << 18) + 16)


# The run's mpi.Session (a RunContext resource: the suite's run_case holds it there).
RUN_SESSION = "interconnect.session"


class AllreduceImpl(Impl):
    """One all-reduce algorithm or library (an impl of the interconnect suite): subclass
    it, give `run` (one all-reduce, finished on return) and the buffers, list the class
    in the suite's IMPLS. Timing (time_collective, in the run's timing style) and the
    exact check are the same for every impl and live here."""

    target_kinds = ("cpu",)
    # measure.TIMINGS: "pipelined" (IMB -sync off, nccl-tests) or "barrier" (OSU): the
    # run's --timing, from the case's params (the constructor).
    timing_style = "pipelined"
    send: Any  # the input buffer (host: a numpy array)
    result: Any  # the output buffer (the same array in place)

    @classmethod
    def unavailable(cls, target) -> str | None:
        return mpi.mpi_unavailable_reason()

    @classmethod
    def host_bytes(cls, count: int, dtype: str, inplace: bool, nranks: int) -> int:
        """Peak host memory one rank holds for `count` elements over `nranks` ranks: the
        result and send buffers (device impls: the host staging arrays of the same size)
        and the exact check's block temporaries."""
        nbytes = count * FORMATS[dtype].itemsize
        return nbytes + (0 if inplace else nbytes) + CHECK_BYTES

    def __init__(self, params: dict[str, Any], ctx: RunContext):
        """The case's message on the run's MPI session (RUN_SESSION): `session`, `comm`,
        `count` elements of `dtype`, `inplace`. A subclass calls this, then makes its
        buffers (`send`, `result`)."""
        from .measure import DEFAULT_TIMING

        self.session: mpi.Session = ctx.resource(RUN_SESSION)
        self.comm = self.session.comm
        self.dtype, self.inplace = params["dtype"], bool(params["inplace"])
        self.count = params["size"] // FORMATS[self.dtype].itemsize
        self.timing_style = params.get("timing", DEFAULT_TIMING)

    # --- buffers (host arrays by default) --------------------------------------------
    def fill(self, inputs: "ExactInputs", rank: int) -> None:
        inputs.fill(self.send, rank)

    def prepare_check(self, inputs: "ExactInputs", rank: int) -> None:
        """Inputs in place and the output poisoned, before the checked run (collective
        for impls whose buffers live in an MPI window)."""
        if self.result is not self.send:
            poison(self.result, self.dtype)
        inputs.fill(self.send, rank)

    def result_host(self) -> np.ndarray:
        return self.result

    def describe(self) -> dict:
        """What this impl ran with (call, datatype, library)."""
        return {}

    # --- the case: the same for every impl --------------------------------------------
    def measure(self, policy) -> Samples:
        from .measure import max_iterations, min_iterations, time_collective

        session = self.session
        self.inputs = ExactInputs(self.dtype, session.size)
        self.fill(self.inputs, session.rank)  # never zeros: the same small integers as the check
        budget = policy.budget_s
        self.timing = time_collective(session.comm, self.run, self.count * FORMATS[self.dtype].itemsize, budget,
                                      min_iterations(budget), max_iterations(budget), self.timing_style)
        return self.timing.samples_record()

    def check(self) -> Validation:
        """One run with exact small-integer inputs and a poisoned output; any wrong
        element on any rank fails the case (every rank learns the verdict)."""
        session = self.session
        self.prepare_check(self.inputs, session.rank)
        self.run()
        result = self.result_host()
        kind = fault_for(self.name)
        if kind in ("element", "nan", "scale") and session.rank == 0:  # tests: a wrong result
            result = corrupt(result.copy(), self.dtype, kind, session.rank)
        elif kind == "rank" and session.rank == session.size - 1:  # tests: one rank's bytes wrong
            result = result.copy()
            result.view(np.uint8)[0] ^= 0xFF
        checked = session.comm.allgather(int(result.size))  # every rank checks every element it was sent
        short = [(r, n) for r, n in enumerate(checked) if n != self.count]
        if short:
            return Validation(status=FAILED, max_rel_error=None, tolerance=0.0,
                              reason=f"wrong result: rank {short[0][0]} checked {short[0][1]} of the {self.count} "
                                     "elements sent")
        wrong_by_rank = session.comm.allgather(self.inputs.count_wrong(result))
        wrong = sum(w for w, _ in wrong_by_rank)
        if not wrong:
            return Validation(status=PASSED, max_rel_error=0.0, tolerance=0.0)
        bad = [(r, w, f) for r, (w, f) in enumerate(wrong_by_rank) if w]
        r0, _, f0 = bad[0]
        return Validation(status=FAILED, max_rel_error=None, tolerance=0.0,
                          reason=(f"wrong result: {wrong} wrong element(s) summed over {len(bad)} of "
                                  f"{session.size} rank(s) ({self.count} elements per rank; first at index "
                                  f"{f0} on rank {r0})"))

    def detail(self) -> dict:
        from .measure import TIMING_LIKE

        d = {**self.describe(), "elements": self.count, "ranks": self.session.size,
             "timing": self.timing_style, "timing_like": TIMING_LIKE[self.timing_style]}
        timing = getattr(self, "timing", None)
        if timing is not None:
            d["iterations"] = timing.iters
            if timing.rank_avg:  # rank 0 alone holds every rank's average
                d.update({"time_us_min_rank": min(timing.rank_avg) * 1e6,
                          "time_us_avg_rank": float(np.mean(timing.rank_avg)) * 1e6,
                          "time_us_max_rank": max(timing.rank_avg) * 1e6,
                          "check_inputs": f"((i + rank) mod {self.inputs.k}) - {self.inputs.amp}"})
        return d
