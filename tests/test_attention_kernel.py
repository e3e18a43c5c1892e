"""The own CPU attention kernel against a float64 numpy reference, on every ISA path."""

import numpy as np
import pytest

from aibench import _core

FP32_PATHS = list(_core.attention_paths("fp32"))
BF16_PATHS = list(_core.attention_paths("bf16"))

# (batch, heads, kv_heads, seq_q, seq_k, head_dim): odd sizes around the 64-row query and
# 64-key tiles, Sq != Sk both ways (bottom-right causal; Sq > Sk leaves queries with no
# visible key), grouped-query attention, head dims off the fast paths.
SHAPES = [
    (1, 1, 1, 1, 1, 1),
    (2, 3, 3, 7, 7, 48),
    (1, 2, 1, 63, 63, 64),
    (1, 2, 2, 130, 130, 80),
    (1, 8, 2, 37, 100, 64),     # GQA, Sq < Sk
    (1, 2, 1, 100, 37, 128),    # Sq > Sk: the first 63 queries see no key when causal
    (2, 8, 2, 130, 130, 128),   # GQA
    (1, 1, 1, 65, 129, 33),     # odd head dim (bf16 pairs), one key past a tile
    (1, 2, 2, 64, 128, 256),    # whole tiles, the largest head dim
    (1, 4, 1, 130, 7, 1),
    (1, 2, 1, 130, 300, 64),    # causal diagonal crosses K tiles mid-tile
    (1, 2, 2, 200, 70, 48),
]


def to_bf16(x):
    """float -> bf16 bits (uint16), round to nearest even."""
    b = np.ascontiguousarray(x, np.float32).view(np.uint32).astype(np.uint64)
    b = (b + 0x7FFF + ((b >> 16) & 1)) >> 16
    return b.astype(np.uint16)


def from_bf16(u):
    return (u.astype(np.uint32) << 16).view(np.float32)


def reference(q, k, v, causal, scale):
    """float64 softmax(q kᵀ scale + bottom-right causal mask) v; rows with no key -> 0."""
    b, h, sq, d = q.shape
    hkv, sk = k.shape[1], k.shape[2]
    g = h // hkv
    kk = np.repeat(k.astype(np.float64), g, axis=1)
    vv = np.repeat(v.astype(np.float64), g, axis=1)
    s = np.einsum("bhid,bhjd->bhij", q.astype(np.float64), kk) * scale
    if causal:
        i = np.arange(sq)[:, None]
        j = np.arange(sk)[None, :]
        s = np.where(j <= i + sk - sq, s, -np.inf)
    m = s.max(axis=-1, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    p = np.exp(s - m)
    l = p.sum(axis=-1, keepdims=True)
    return np.where(l > 0, (p @ vv) / np.where(l > 0, l, 1.0), 0.0)


def _inputs(rng, shape, spread=1.0):
    b, h, hkv, sq, sk, d = shape
    q = (rng.standard_normal((b, h, sq, d)) * spread).astype(np.float32)
    k = (rng.standard_normal((b, hkv, sk, d)) * spread).astype(np.float32)
    v = rng.standard_normal((b, hkv, sk, d)).astype(np.float32)
    return q, k, v


def _no_key_rows(shape, causal):
    _, _, _, sq, sk, _ = shape
    return np.arange(sq) + sk - sq < 0 if causal else np.zeros(sq, bool)


@pytest.mark.parametrize("isa", FP32_PATHS)
@pytest.mark.parametrize("causal", [False, True])
def test_fp32_matches_float64_reference(isa, causal):
    rng = np.random.default_rng(0)
    for shape in SHAPES:
        q, k, v = _inputs(rng, shape)
        o = np.full_like(q, np.nan)
        scale = 1.0 / np.sqrt(shape[-1])
        _core.attention(q, k, v, o, causal, scale, isa)
        ref = reference(q, k, v, causal, scale)
        err = np.max(np.abs(o - ref)) / np.max(np.abs(ref))
        assert err < 1e-5, f"{isa} causal={causal} {shape}: error {err}"
        assert np.all(o[:, :, _no_key_rows(shape, causal)] == 0)


@pytest.mark.parametrize("isa", FP32_PATHS)
def test_fp32_large_logits_are_stable(isa):
    # Scores in the hundreds: the online softmax must subtract the running max.
    rng = np.random.default_rng(1)
    shape = (1, 2, 1, 130, 200, 64)
    q, k, v = _inputs(rng, shape, spread=4.0)
    for causal in (False, True):
        o = np.full_like(q, np.nan)
        _core.attention(q, k, v, o, causal, 1.0, isa)
        ref = reference(q, k, v, causal, 1.0)
        assert np.all(np.isfinite(o))
        # fp32 scores of a few hundred carry absolute errors ~1e-5 (the same for a plain
        # fp32 softmax): conditioning, not the kernel; a missing max subtraction gives inf/NaN.
        err = np.max(np.abs(o - ref)) / np.max(np.abs(ref))
        assert err < 1e-4, f"{isa} causal={causal}: error {err}"


@pytest.mark.parametrize("isa", BF16_PATHS + ["auto"])
@pytest.mark.parametrize("causal", [False, True])
def test_bf16_matches_float64_reference(isa, causal):
    rng = np.random.default_rng(2)
    for shape in SHAPES:
        q32, k32, v32 = _inputs(rng, shape)
        q, k, v = to_bf16(q32), to_bf16(k32), to_bf16(v32)
        o = np.full_like(q, 0x7FC0)  # NaN
        scale = 1.0 / np.sqrt(shape[-1])
        _core.attention(q, k, v, o, causal, scale, isa)
        ref = reference(from_bf16(q), from_bf16(k), from_bf16(v), causal, scale)
        out = from_bf16(o)
        err = np.max(np.abs(out - ref)) / np.max(np.abs(ref))
        assert err < 2e-2, f"{isa} causal={causal} {shape}: error {err}"
        assert np.all(out[:, :, _no_key_rows(shape, causal)] == 0)


@pytest.mark.parametrize("isa", BF16_PATHS)
def test_bf16_large_logits_are_stable(isa):
    rng = np.random.default_rng(3)
    shape = (1, 2, 2, 70, 130, 128)
    q32, k32, v32 = _inputs(rng, shape, spread=4.0)
    q, k, v = to_bf16(q32), to_bf16(k32), to_bf16(v32)
    for causal in (False, True):
        o = np.zeros_like(q)
        _core.attention(q, k, v, o, causal, 0.5, isa)
        ref = reference(from_bf16(q), from_bf16(k), from_bf16(v), causal, 0.5)
        err = np.max(np.abs(from_bf16(o) - ref)) / np.max(np.abs(ref))
        assert err < 2e-2, f"causal={causal}: error {err}"


@pytest.mark.skipif("avx512_bf16" in BF16_PATHS, reason="CPU has AVX512_BF16")
def test_bf16_native_path_without_avx512_bf16_raises():
    q = np.zeros((1, 1, 4, 8), np.uint16)
    with pytest.raises((ValueError, RuntimeError), match="AVX512_BF16"):
        _core.attention(q, q.copy(), q.copy(), np.zeros_like(q), False, 1.0, "avx512_bf16")


# Every AIBENCH_CPU_ISA level name, to probe the kernels with. Which names a dtype accepts
# comes from attention_paths() on this CPU, never from what a CPU is assumed to have.
LEVEL_NAMES = ["scalar", "avx2", "avx512", "avx512_vnni", "avx512_bf16"]


@pytest.mark.parametrize("dtype", ["fp32", "bf16"])
def test_each_dtype_runs_exactly_the_paths_it_declares(dtype):
    assert set(_core.cpu_isa_levels()) <= set(LEVEL_NAMES), "a new level: add it to LEVEL_NAMES"
    declared = FP32_PATHS if dtype == "fp32" else BF16_PATHS
    q = np.ones((1, 2, 5, 8), np.float32)
    if dtype == "bf16":
        q = to_bf16(q)
    for name in LEVEL_NAMES:
        o = np.zeros_like(q)
        if name in declared:  # a declared path runs, and is right (V is all ones: O is too)
            _core.attention(q, q.copy(), q.copy(), o, False, 1.0, name)
            out = from_bf16(o) if dtype == "bf16" else o
            assert np.all(out == 1.0), f"{dtype} on {name}"
        else:  # any other level is refused as bad input, not run on another path
            with pytest.raises(ValueError):
                _core.attention(q, q.copy(), q.copy(), o, False, 1.0, name)


def test_paths():
    assert FP32_PATHS[0] == "scalar"
    assert set(FP32_PATHS) <= {"scalar", "avx2", "avx512"}
    # bf16: the GEMM's bf16 paths, slowest first (every fp32 path widening, and the native
    # one where the CPU has it, ranked by its measured rate: see test_gemm_cpu.py)
    assert BF16_PATHS == list(reversed(_core.lowp_paths("bf16")))
    assert [p for p in BF16_PATHS if not _core.is_native_lowp_path(p)] == FP32_PATHS
    with pytest.raises(ValueError):
        _core.attention_paths("fp16")


@pytest.mark.parametrize("dtype", ["fp32", "bf16"])
def test_thread_count_does_not_change_the_result(dtype):
    if dtype == "bf16" and not BF16_PATHS:
        pytest.skip("CPU without AVX512_BF16")
    rng = np.random.default_rng(4)
    q, k, v = _inputs(rng, (2, 4, 2, 200, 200, 64))
    if dtype == "bf16":
        q, k, v = to_bf16(q), to_bf16(k), to_bf16(v)
    o1, o2 = np.zeros_like(q), np.zeros_like(q)
    _core.attention(q, k, v, o1, True, 0.125, threads=1)
    _core.attention(q, k, v, o2, True, 0.125, threads=0)
    np.testing.assert_array_equal(o1, o2)


def test_attention_op_rotates_buffers_and_computes_each():
    rng = np.random.default_rng(5)
    shape = (1, 4, 2, 33, 45, 64)
    sets = [_inputs(rng, shape) for _ in range(3)]
    q = [s[0] for s in sets]
    k = [s[1] for s in sets]
    v = [s[2] for s in sets]
    o = [np.full_like(s[0], np.nan) for s in sets]
    op = _core.Attention(q, k, v, o, "fp32", True, 0.125)
    assert op.time(3) > 0 and op.describe["buffer_sets"] == 3
    for qi, ki, vi, oi in zip(q, k, v, o):
        ref = reference(qi, ki, vi, True, 0.125)
        assert np.max(np.abs(oi - ref)) < 1e-5 * np.max(np.abs(ref))


def test_bad_arguments_raise_value_error_not_crash():
    q = np.zeros((1, 4, 8, 16), np.float32)
    k = np.zeros((1, 2, 8, 16), np.float32)
    o = np.zeros_like(q)

    def call(q=q, k=k, v=k, o=o, isa="auto", threads=0, scale=1.0):
        _core.attention(q, k, v, o, False, scale, isa, threads)

    call()  # the valid call
    bad = [
        dict(q=q[0]),                                             # 3-D
        dict(q=q.astype(np.float64), o=o.astype(np.float64)),     # float64
        dict(o=o.astype(np.uint16)),                              # mixed dtypes
        dict(k=k.astype(np.uint16), v=k.astype(np.uint16)),
        dict(q=np.zeros((1, 4, 8, 32), np.float32)[:, :, :, ::2]),  # non-contiguous
        dict(o=np.zeros((1, 4, 8, 16), np.float32)[:, :, :, ::-1]),
        dict(k=np.zeros((1, 3, 8, 16), np.float32), v=np.zeros((1, 3, 8, 16), np.float32)),  # 4 % 3
        dict(v=np.zeros((1, 2, 9, 16), np.float32)),              # v does not match k
        dict(k=np.zeros((1, 2, 8, 15), np.float32), v=np.zeros((1, 2, 8, 15), np.float32)),
        dict(o=np.zeros((1, 4, 9, 16), np.float32)),
        dict(q=np.zeros((1, 4, 8, 0), np.float32), k=np.zeros((1, 2, 8, 0), np.float32),
             v=np.zeros((1, 2, 8, 0), np.float32), o=np.zeros((1, 4, 8, 0), np.float32)),
        dict(q=np.zeros((1, 1, 2, 257), np.float32), k=np.zeros((1, 1, 2, 257), np.float32),
             v=np.zeros((1, 1, 2, 257), np.float32), o=np.zeros((1, 1, 2, 257), np.float32)),
        dict(o=q),                                                # o aliases q
        dict(isa="avx1024"),
        dict(threads=-1),
        dict(scale=float("nan")),
    ]
    for kwargs in bad:
        with pytest.raises(ValueError):
            call(**kwargs)
    ro = np.zeros_like(q)
    ro.flags.writeable = False
    with pytest.raises(ValueError):
        call(o=ro)
    with pytest.raises(TypeError):
        call(q=q.tolist())
    with pytest.raises(ValueError):
        _core.Attention([], [], [], [], "fp32", False, 1.0)
    with pytest.raises(ValueError):
        _core.Attention([q], [k], [k], [o], "fp32", False, 1.0).time(0)
    with pytest.raises(ValueError):
        _core.Attention([q], [k], [k], [o], "bf16", False, 1.0)  # the dtype named is not the arrays'
    with pytest.raises(ValueError):
        _core.Attention([q, q], [k, k], [k, k], [o, np.zeros((1, 4, 9, 16), np.float32)], "fp32", False, 1.0)
