"""pytest-benchmark micro-benchmarks of aibench's own CPU kernels (GEMM and attention).

One benchmark per (path, dtype, shape) on every path this CPU runs (gemm: isa_paths() for
fp32/fp64, lowp_paths(dtype) for bf16/int8; attention: attention_paths(dtype)); the scalar
path only at small shapes. Every benchmark checks the output of its timed calls against a
float64 reference, so a wrong kernel fails instead of being timed.

    pytest benchmarks --benchmark-disable   # each once, as a correctness test
    pytest benchmarks --benchmark-autosave  # timed, saved under .benchmarks/
    python benchmarks/gate.py               # the newest saved run against the ones before it

See docs/kernel-benchmarks.md. The operands stay in cache between calls (one buffer set):
these time the kernel, not the memory system; `aibench run` gives the node's figures.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import kernels
from aibench.dtypes import bf16_to_float32
from aibench.suites.attention.common import (
    attention_flops, attention_tolerance, default_scale, kv_head, reference_rows, sampled_rows)
from aibench.suites.gemm.common import gemm_tolerance, sampled_error

# (m, n, k): square, then skinny: a GEMV (one row), a 16-row panel, a rank-16 update, a
# product with four columns (the few-column kernel).
GEMM_SHAPES = [(256, 256, 256), (512, 512, 512), (1024, 1024, 1024),
               (1, 2048, 2048), (16, 1024, 1024), (1024, 1024, 16), (2048, 4, 1024)]
# The scalar path is 3-10x slower: only shapes of at most this many FLOPs (256^3's).
SCALAR_MAX_FLOPS = 2 * 256**3
ATTENTION_SHAPES = [
    # batch, heads, kv_heads, seqlen (= kv_seqlen), head_dim, causal
    dict(batch=1, heads=8, kv_heads=8, seqlen=512, head_dim=64, causal=False),
    dict(batch=1, heads=8, kv_heads=2, seqlen=512, head_dim=128, causal=True),
]
_SAMPLES = 32  # rows and columns of C the GEMM check samples
_POISON = {np.dtype(np.int32): np.iinfo(np.int32).min}  # else NaN


def _gemm_cases():
    cases = []
    for dtype in kernels.GEMM_DTYPES:
        for isa in kernels.gemm_paths(dtype):
            for m, n, k in GEMM_SHAPES:
                if isa == "scalar" and 2 * m * n * k > SCALAR_MAX_FLOPS:
                    continue
                cases.append(pytest.param(isa, dtype, (m, n, k), id=f"{isa}-{dtype}-{m}x{n}x{k}"))
    return cases


def _attention_cases():
    cases = []
    for dtype in kernels.ATTENTION_DTYPES:
        for isa in kernels.attention_paths(dtype):
            for p in ATTENTION_SHAPES:
                name = (f"b{p['batch']}h{p['heads']}kv{p['kv_heads']}s{p['seqlen']}d{p['head_dim']}"
                        f"{'-causal' if p['causal'] else ''}")
                cases.append(pytest.param(isa, dtype, p, id=f"{isa}-{dtype}-{name}"))
    return cases


def _sample(n: int, rng: np.random.Generator) -> np.ndarray:
    if n <= _SAMPLES:
        return np.arange(n)
    picks = {0, n - 1} | set(rng.choice(n, _SAMPLES - 2, replace=False).tolist())
    return np.array(sorted(picks))


def _f64(x: np.ndarray, dtype: str) -> np.ndarray:
    return (bf16_to_float32(x) if dtype == "bf16" else x).astype(np.float64)


@pytest.mark.parametrize("isa,dtype,shape", _gemm_cases())
def test_gemm(benchmark, operand, rng, isa, dtype, shape):
    m, n, k = shape
    a, b = operand((m, k), dtype, k), operand((k, n), dtype, k)
    c = kernels.gemm_output(m, n, dtype)
    c.fill(_POISON.get(c.dtype, np.nan))  # a kernel that writes nothing fails the check
    benchmark.group = f"gemm {dtype} {m}x{n}x{k}"
    benchmark.extra_info.update(kernel="gemm", isa=isa, dtype=dtype, m=m, n=n, k=k, flops=2.0 * m * n * k)

    out = benchmark(kernels.gemm, a, b, c, isa)

    rows, cols = _sample(m, rng), _sample(n, rng)
    err, ref = sampled_error(_f64(a[rows, :], dtype), _f64(b[:, cols], dtype),
                             out[np.ix_(rows, cols)].astype(np.float64))
    tol = gemm_tolerance("bf16-fp32out" if dtype == "bf16" else dtype, k, ref)
    assert err <= tol, f"gemm {isa} {dtype} {m}x{n}x{k}: error {err:.3g} x rms(C) above tolerance {tol:.3g}"


@pytest.mark.parametrize("isa,dtype,p", _attention_cases())
def test_attention(benchmark, operand, rng, isa, dtype, p):
    b, h, hk, s, d = p["batch"], p["heads"], p["kv_heads"], p["seqlen"], p["head_dim"]
    q, k, v = operand((b, h, s, d), dtype), operand((b, hk, s, d), dtype), operand((b, hk, s, d), dtype)
    o = np.empty_like(q)
    o.fill(0x7FC0 if dtype == "bf16" else np.nan)
    scale = default_scale(d)
    benchmark.group = f"attention {dtype} b{b} h{h}/{hk} s{s} d{d}{' causal' if p['causal'] else ''}"
    benchmark.extra_info.update(kernel="attention", isa=isa, dtype=dtype, **p,
                                flops=attention_flops({**p, "kv_seqlen": s}))

    out = benchmark(kernels.attention, q, k, v, o, p["causal"], scale, isa)

    for bi, hi in ((0, 0), (b - 1, h - 1)):  # the first and last heads (aibench run checks every one)
        hj = kv_head(hi, h, hk)
        rows = sampled_rows(rng, s)
        ref = reference_rows(_f64(q[bi, hi], dtype), _f64(k[bi, hj], dtype), _f64(v[bi, hj], dtype),
                             rows, p["causal"], scale)
        got = _f64(out[bi, hi][rows], dtype)
        rms = float(np.sqrt(np.mean(ref * ref))) or 1.0
        err = float(np.max(np.abs(got - ref))) / rms if np.all(np.isfinite(got)) else math.inf
        tol = attention_tolerance(dtype, ref, s)  # kv_seqlen = s here
        assert err <= tol, (f"attention {isa} {dtype} {p} head ({bi}, {hi}): error {err:.3g} x rms(O) "
                            f"above tolerance {tol:.3g}")
