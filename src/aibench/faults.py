"""Test-only fault injection: AIBENCH_TEST_FAULT=IMPL:KIND[,IMPL:KIND...] corrupts the
result an impl computed, after it computed it and before aibench validates it, so that
tests prove every impl's validation catches a wrong result (its case must fail, exit 1).

Kinds:
  element  one output element at a random position moved by twice the output's largest
           magnitude (an integer output: by 7): above any tolerance, in any format
           (scripts/corruption_experiment.py measures what smaller errors the checks catch)
  nan      one output element at a random position set to NaN (an integer output: to
           its most negative value)
  scale    the whole output times 1.01
  rank     collectives: one rank's (the last one's) result bytes flipped
  reduce   the RMA all-reduce's local reductions skipped on rank 0 (rma.py)
  hang     collectives: the last rank stops itself (SIGSTOP) as the case starts, so its
           peers wait for it: the hang watchdog must end the run naming it (watchdog.py)
  inflate  the output is left alone (validation passes) and the measured rates are
           multiplied by 3 after measuring (inflate, in the case template): the case must
           fail through its independent bound (Suite.check_bound), "exceeds physical bound"

Unset (every real run), this module does nothing. Every Impl calls `inject(self.name,
output, fmt)` (or its own equivalent) between computing and validating; a new impl gets
the parametrised fault test of tests/test_faults.py from the suites' IMPLS tables.
"""

from __future__ import annotations

import os

import numpy as np

ENV = "AIBENCH_TEST_FAULT"
KINDS = ("element", "nan", "scale", "rank", "reduce", "hang", "inflate")
# Kinds that leave the computed output alone (they change the algorithm, a rank, a figure).
_NOT_OUTPUT = ("reduce", "hang", "inflate")
# What `inflate` multiplies a rate by: well above any timing noise, and a realistic bug
# (a byte count taken three times, a FLOP formula off by a factor). Tests on a loaded
# machine, where a figure can sit far below its bound, set a larger one in
# AIBENCH_TEST_INFLATE_FACTOR (tests/test_faults.py).
INFLATE_FACTOR = 3.0
FACTOR_ENV = "AIBENCH_TEST_INFLATE_FACTOR"
# Formats held as raw bits: decoded to float to be corrupted, encoded back (outputs are
# never fp8: an fp8 GEMM writes bf16).
_BITS = ("bf16",)


def fault_for(impl: str) -> str | None:
    """The fault kind AIBENCH_TEST_FAULT names for `impl`, or None. ValueError for a
    malformed setting (a test-only variable: a wrong one must not pass silently)."""
    text = os.environ.get(ENV, "").strip()
    if not text:
        return None
    faults = {}
    for item in text.split(","):
        name, sep, kind = item.strip().partition(":")
        if not sep:  # the old form: AIBENCH_TEST_FAULT=reduce (the RMA all-reduce)
            name, kind = "*", name
        if kind not in KINDS:
            raise ValueError(f"{ENV}: unknown fault kind {kind!r} in {item!r} (kinds: {', '.join(KINDS)})")
        faults[name] = kind
    return faults.get(impl, faults.get("*"))


def corrupts_output(impl: str) -> bool:
    """Whether AIBENCH_TEST_FAULT asks to corrupt what `impl` computed (any kind but
    `reduce`, which changes the RMA algorithm itself, `hang`, which stops a rank, and
    `inflate`, which changes the figure)."""
    return fault_for(impl) not in (None, *_NOT_OUTPUT)


def corrupt(out, fmt: str, kind: str, seed: int = 0):
    """`out` (a numpy or CuPy array of format `fmt`: fp64, fp32, fp16, bf16 bits or
    int32) with the fault `kind` applied, in place where the array allows; returns the
    corrupted array. `element` and `nan` pick one position at random (seeded)."""
    xp = _array_module(out)
    rng = np.random.default_rng(seed + 12345)
    if kind == "scale":
        if fmt in _BITS:
            values = _decode(xp, out, fmt) * 1.01
            out[...] = _encode(xp, values, fmt)
        elif np.issubdtype(np.dtype(out.dtype), np.integer):
            out[...] = (out.astype(np.float64) * 1.01).round().astype(out.dtype)
        else:
            out *= out.dtype.type(1.01)
        return out
    flat = out.reshape(-1)
    pos = int(rng.integers(0, flat.size))
    integer = np.issubdtype(np.dtype(out.dtype), np.integer) and fmt not in _BITS
    if kind == "nan":
        if integer:
            flat[pos] = np.iinfo(np.dtype(out.dtype)).min
        else:
            flat[pos : pos + 1] = _encode(xp, xp.asarray([np.nan]), fmt) if fmt in _BITS else np.nan
        return out
    if kind in ("element", "rank"):
        if integer:
            flat[pos] = flat[pos] + 7
            return out
        values = _decode(xp, out, fmt) if fmt in _BITS else out.astype(np.float64)
        largest = float(xp.max(xp.abs(values[xp.isfinite(values)]))) or 1.0
        moved = values.reshape(-1)[pos : pos + 1] + 2.0 * largest
        flat[pos : pos + 1] = _encode(xp, moved, fmt) if fmt in _BITS else moved.astype(out.dtype)
        return out
    raise ValueError(f"fault kind {kind!r} does not apply to an output array")


def inject(impl: str, out, fmt: str, seed: int = 0):
    """`out` corrupted as AIBENCH_TEST_FAULT asks for `impl` (usually: unchanged)."""
    kind = fault_for(impl)
    if kind is None or kind in _NOT_OUTPUT:
        return out
    return corrupt(out, fmt, kind, seed)


def _array_module(arr):
    if isinstance(arr, np.ndarray):
        return np
    import cupy  # a device array: the CUDA runners' outputs

    return cupy


def _decode(xp, bits, fmt: str):
    from .dtypes import bf16_to_float32

    return bf16_to_float32(bits).astype(xp.float64)  # bf16 bits


def _encode(xp, values, fmt: str):
    from .dtypes import bf16_bits

    host = values if xp is np else values.get()
    return xp.asarray(bf16_bits(np.asarray(host, dtype=np.float32)))


def stop_if_hang(impl: str, rank: int, size: int) -> None:
    """The `hang` fault: the last rank of a collective case stops itself, as a rank whose
    node froze would (SIGSTOP: it holds its sockets and answers nothing)."""
    if size > 1 and rank == size - 1 and fault_for(impl) == "hang":
        import signal

        os.kill(os.getpid(), signal.SIGSTOP)


def inflate(impl: str, metrics: dict) -> dict:
    """`metrics` (name -> results.Metric) as measured, or, under the `inflate` fault for
    `impl`, with every rate (a higher-is-better figure) times INFLATE_FACTOR and every time
    divided by it: the figures of a timer or a counter off by that factor, after a
    validation that passed."""
    if fault_for(impl) != "inflate":
        return metrics
    from dataclasses import replace

    factor = float(os.environ.get(FACTOR_ENV) or INFLATE_FACTOR)

    return {name: replace(m, value=None if m.value is None else
                          m.value * factor if m.higher_is_better else m.value / factor)
            for name, m in metrics.items()}
