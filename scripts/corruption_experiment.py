#!/usr/bin/env python3
"""How often does validation catch one wrong output element? (issue #20's experiment)

    python scripts/corruption_experiment.py [--positions 1000] [--size 2048]

GEMM (size³, fp32 and bf16, the own CPU kernel): the output is computed once; then, at
each of N random positions, one element is moved by a given fraction of rms(C) and the
checks are run on it: `sampled` (the float64 reference on 24 sampled rows x 24 columns:
the check before this change) and `full` (GemmRunner.validate now: the sampled check,
then every element through Freivalds' projections). Attention (fp32, the own CPU
kernel): one element of the output at N random (head, row, column) positions, moved by
10% of rms(O); `sampled` is the check before (3 heads x 32 rows), `full` is
AttentionRunner.validate now. Prints one line per (kernel, dtype, error size): caught /
positions for each check.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from aibench.harness import SamplingPolicy
from aibench.results import PASSED
from aibench.suites.attention import common as attention_common
from aibench.suites.attention.cpu import OwnAttentionRunner
from aibench.suites.base import RunContext
from aibench.suites.gemm import common as gemm_common
from aibench.suites.gemm.cpu import OwnKernelRunner
from aibench.targets import parse_target

CTX = RunContext(target=parse_target("cpu"), policy=SamplingPolicy(budget_s=0.1))


def _prepared(cls, params):
    runner = cls(params, CTX)
    runner.params, runner.seed = params, CTX.seed
    runner.run()
    return runner


def gemm_sampled_only(runner) -> bool:
    """The check before: the float64 reference on sampled rows x columns."""
    rng = np.random.default_rng(runner.seed + 7)
    rows = gemm_common.sample_indices(rng, runner.params["m"])
    cols = gemm_common.sample_indices(rng, runner.params["n"])
    error, ref = gemm_common.sampled_error(*runner.sample(rows, cols))
    return error > gemm_common.gemm_tolerance(runner.validation_dtype(), runner.params["k"], ref)


def gemm_experiment(dtype: str, size: int, positions: int, fractions: list[float]) -> None:
    runner = _prepared(OwnKernelRunner, {"m": size, "n": size, "k": size, "dtype": dtype})
    c = runner.c[0]
    # A and B never change here: their float64 row blocks are decoded once (C's every time).
    decoded, rows = {}, runner.rows
    runner.rows = lambda which, s, e: rows(which, s, e) if which == "c" else \
        decoded.setdefault((which, s, e), rows(which, s, e))
    assert runner.validate().status == PASSED, "the uncorrupted output must pass"
    rms = float(np.sqrt(np.mean(c.astype(np.float64) ** 2)))
    rng = np.random.default_rng(2026)
    where = rng.integers(0, c.size, positions)
    for fraction in fractions:
        caught = {"sampled": 0, "full": 0}
        started = time.perf_counter()
        for pos in where:
            i, j = divmod(int(pos), c.shape[1])
            original = c[i, j]
            c[i, j] = original + fraction * rms
            caught["sampled"] += gemm_sampled_only(runner)
            caught["full"] += runner.validate().status != PASSED
            c[i, j] = original
        print(f"gemm {size}^3 {dtype:5s} one element + {fraction:g} x rms(C): sampled check caught "
              f"{caught['sampled']}/{positions}, sampled + Freivalds caught {caught['full']}/{positions} "
              f"({time.perf_counter() - started:.0f} s)", flush=True)


def attention_sampled_only(runner) -> bool:
    """The check before: 3 heads (the first, the last, one random) x 32 sampled rows."""
    p = runner.params
    rng = np.random.default_rng(runner.seed + 11)
    pairs = {(0, 0), (p["batch"] - 1, p["heads"] - 1)}
    while len(pairs) < min(3, p["batch"] * p["heads"]):
        pairs.add((int(rng.integers(p["batch"])), int(rng.integers(p["heads"]))))
    scale = attention_common.default_scale(p["head_dim"])
    errors, refs = [], []
    for b, h in sorted(pairs):
        q, k, v, o = runner.head(b, h)
        rows = attention_common.sampled_rows(rng, p["seqlen"], 32)
        ref = attention_common.reference_rows(q, k, v, rows, p["causal"], scale)
        errors.append(float(np.max(np.abs(o[rows] - ref))))
        refs.append(ref)
    ref_all = np.concatenate(refs)
    rms = float(np.sqrt(np.mean(ref_all * ref_all))) or 1.0
    return max(errors) / rms > attention_common.attention_tolerance(p["dtype"], ref_all, p["kv_seqlen"])


def attention_experiment(params: dict, positions: int, label: str) -> None:
    runner = _prepared(OwnAttentionRunner, params)
    o = runner.o[0]
    assert runner.validate().status == PASSED, "the uncorrupted output must pass"
    rms = float(np.sqrt(np.mean(o.astype(np.float64) ** 2)))
    where = np.random.default_rng(2027).integers(0, o.size, positions)
    flat = o.reshape(-1)
    caught = {"sampled": 0, "full": 0}
    started = time.perf_counter()
    for pos in where:
        original = flat[pos]
        flat[pos] = original + 0.1 * rms
        caught["sampled"] += attention_sampled_only(runner)
        caught["full"] += runner.validate().status != PASSED
        flat[pos] = original
    print(f"attention {label} one element + 0.1 x rms(O): 3 heads x 32 rows caught {caught['sampled']}/{positions}, "
          f"the check now caught {caught['full']}/{positions} ({time.perf_counter() - started:.0f} s)", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--positions", type=int, default=1000)
    ap.add_argument("--size", type=int, default=2048)
    args = ap.parse_args()
    for dtype in ("fp32", "bf16"):
        gemm_experiment(dtype, args.size, args.positions, [0.1, 0.01])
    small = {"batch": 2, "heads": 8, "kv_heads": 2, "seqlen": 256, "kv_seqlen": 256, "head_dim": 64,
             "causal": True, "dtype": "fp32"}
    attention_experiment(small, args.positions, "b2 h8/2 s256 d64 causal fp32 (every row checked)")
    quick = {"batch": 4, "heads": 16, "kv_heads": 16, "seqlen": 1024, "kv_seqlen": 1024, "head_dim": 128,
             "causal": False, "dtype": "fp32"}
    saved = attention_common.FULL_CHECK_WORK
    attention_common.FULL_CHECK_WORK = 0  # the sampled regime of larger cases: 64 rows of every head
    attention_experiment(quick, min(args.positions, 200), "b4 h16 s1024 d128 fp32 (64 rows per head)")
    attention_common.FULL_CHECK_WORK = saved


if __name__ == "__main__":
    main()
