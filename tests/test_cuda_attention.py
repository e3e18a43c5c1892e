"""aibench._cuda.FlashAttention: aibench's own FlashAttention-2 forward kernel.

GPU tests (marked gpu) fill q, k, v on the device, run the kernel, copy everything back and
compare with a float64 numpy attention of the very inputs the GPU used (decoded), within a
bound derived from where the kernel rounds: P is rounded to bf16/fp16 before P.V (the row
sum uses the unrounded fp32 values) and the output is rounded once; scores, softmax and
accumulation are fp32. CPU tests check argument validation (before any CUDA call) and run
the host emulation of the kernel's tiling, fragment layouts, masks and online softmax.
"""

import math

import numpy as np
import pytest

from aibench.dtypes import decode
from cuda_helpers import built_cuda_module, run_host_check

DEVICE = 0
STORAGE = {"bf16": np.uint16, "fp16": np.float16}
SENTINEL = {"bf16": 0x7FC0, "fp16": np.nan}  # NaN: an element the kernel skipped fails
UNIT_ROUNDOFF = {"bf16": 2.0**-8, "fp16": 2.0**-11}

# (batch, heads, kv_heads, seqlen_q, seqlen_k, head_dim)
SHAPES = [
    (1, 1, 1, 1, 1, 64),
    (2, 4, 4, 7, 7, 64),
    (1, 8, 2, 130, 130, 128),  # GQA, partial query and key tiles
    (1, 2, 2, 37, 100, 64),  # seqlen_q < seqlen_k: causal mask aligned bottom-right
    (1, 2, 1, 100, 37, 128),  # seqlen_q > seqlen_k: causal rows that see no key
    (1, 2, 1, 300, 37, 64),  # ...and whole causal query tiles that see no key
    (1, 2, 2, 127, 191, 128),  # key tail of 63
    (2, 16, 16, 512, 512, 128),
    (1, 4, 1, 1000, 1000, 64),  # GQA 4:1
]


def reference(q, k, v, scale, causal):
    """float64 attention. Returns (o, pn @ |v|, sqrt(pn^2 @ v^2), visible-key count per row)."""
    heads, kv_heads = q.shape[1], k.shape[1]
    k = np.repeat(k, heads // kv_heads, axis=1)
    v = np.repeat(v, heads // kv_heads, axis=1)
    sq, sk = q.shape[2], k.shape[2]
    s = np.matmul(q, np.swapaxes(k, -1, -2)) * scale
    visible = np.ones((sq, sk), dtype=bool)
    if causal:  # query i sees keys j <= i + sk - sq
        visible = np.arange(sk)[None, :] <= np.arange(sq)[:, None] + (sk - sq)
    s = np.where(visible, s, -np.inf)
    m = s.max(axis=-1, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    p = np.where(visible, np.exp(s - m), 0.0)
    l = p.sum(axis=-1, keepdims=True)
    pn = p / np.where(l > 0, l, 1.0)
    return pn @ v, pn @ np.abs(v), np.sqrt((pn * pn) @ (v * v)), visible.sum(axis=1)


# --- fixtures ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cuda():
    cuda = pytest.importorskip("aibench._cuda")
    if cuda.device_count() == 0:
        pytest.skip(f"no CUDA device: {cuda.cuda_unavailable_reason()}")
    assert hasattr(cuda, "FlashAttention"), "aibench._cuda was built without FlashAttention: rebuild it"
    return cuda



def random_device(cuda, cp, shape, dtype, seed):
    array = cp.empty(shape, dtype=STORAGE[dtype])
    cuda.fill_uniform(DEVICE, array.data.ptr, array.size, dtype, seed, -1.0, 1.0)
    return array


def make_op(cuda, cp, dtype, shape, causal, seed=1):
    b, h, hkv, sq, sk, d = shape
    q = random_device(cuda, cp, (b, h, sq, d), dtype, seed)
    k = random_device(cuda, cp, (b, hkv, sk, d), dtype, seed + 1)
    v = random_device(cuda, cp, (b, hkv, sk, d), dtype, seed + 2)
    o = cp.full((b, h, sq, d), SENTINEL[dtype], dtype=STORAGE[dtype])
    scale = 1.0 / math.sqrt(d)
    op = cuda.FlashAttention(DEVICE, b, h, hkv, sq, sk, d, dtype, causal, scale,
                             q.data.ptr, k.data.ptr, v.data.ptr, o.data.ptr)
    return op, (q, k, v, o), scale


# --- correctness ----------------------------------------------------------------------


@pytest.mark.gpu
@pytest.mark.parametrize("causal", [False, True], ids=["full", "causal"])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("dtype", ["bf16", "fp16"])
def test_flash_attention_matches_float64(cuda, cp, capability, dtype, shape, causal):
    if capability < 80:
        pytest.skip("FlashAttention needs compute capability 8.0")
    op, (q, k, v, o), scale = make_op(cuda, cp, dtype, shape, causal)
    op.run()
    qh, kh, vh = (decode(cp.asnumpy(x), dtype) for x in (q, k, v))
    got = decode(cp.asnumpy(o), dtype)
    ref, abs_pv, rms_pv, seen = reference(qh, kh, vh, scale, causal)
    what = f"{dtype} {'causal' if causal else 'full'} shape={shape}"
    assert np.all(np.isfinite(got)), f"{what}: non-finite or unwritten output; {op.describe}"

    # Rows that see no key (causal, seqlen_q > seqlen_k) are exactly zero.
    empty = seen == 0
    if empty.any():
        assert np.all(got[:, :, empty, :] == 0.0), f"{what}: rows without visible keys are not 0"

    # Elementwise bound. Rounding P to the input type perturbs each term of P.V by at most
    # u (relative): u * (pn @ |v|); rounding the output adds u * |o|. fp32 parts: each score
    # is within d*2^-24*sum|q||k| (worst-case summation), which perturbs O by at most twice
    # that times scale, relatively; ex2.approx (~2^-22); sums over seqlen_k in fp32. fp16 P
    # below 2^-14 is subnormal: absolute rounding 2^-25 per key. 2x margin throughout.
    b, h, hkv, sq, sk, d = shape
    u = UNIT_ROUNDOFF[dtype]
    heads_k = np.repeat(np.abs(kh), h // hkv, axis=1)
    qk_abs = float(np.max(np.matmul(np.abs(qh), np.swapaxes(heads_k, -1, -2))))
    sums = 2.0**-20 + 4.0 * sk * 2.0**-24
    fp32 = 4.0 * d * 2.0**-24 * qk_abs * scale + sums
    absolute = (sk * 2.0**-25 if dtype == "fp16" else 0.0) + 1e-6
    tol = (2.0 * u + fp32) * (abs_pv + np.abs(ref)) + absolute
    err = np.abs(got - ref)
    worst = np.unravel_index(np.argmax(err - tol), err.shape)
    assert np.all(err <= tol), (
        f"{what}: {(err > tol).sum()} of {err.size} elements out of tolerance; worst at {worst}: "
        f"got {got[worst]}, expected {ref[worst]}, tolerance {tol[worst]}; {op.describe}"
    )
    # The P rounding errors are independent and mean-free: their RMS is at most
    # u * rms(sqrt(pn^2 @ v^2)), far below the elementwise bound for long rows; the fp32
    # score errors are in practice ~1e-7 relative (not the worst case above). This catches
    # small systematic errors (one key too many or too few in a long row).
    rms = math.sqrt(np.mean(err**2))
    rms_tol = (2.0 * u * math.sqrt(np.mean((rms_pv + np.abs(ref)) ** 2))
               + sums * math.sqrt(np.mean((abs_pv + np.abs(ref)) ** 2)) + absolute)
    assert rms <= rms_tol, f"{what}: RMS error {rms:.3g} > {rms_tol:.3g}; {op.describe}"


@pytest.mark.gpu
def test_flash_attention_describe_and_repeatable(cuda, cp, capability):
    if capability < 80:
        pytest.skip("FlashAttention needs compute capability 8.0")
    op, (q, k, v, o), _ = make_op(cuda, cp, "bf16", (1, 4, 2, 200, 300, 128), True)
    op.run()
    first = cp.asnumpy(o).copy()
    op.run()
    assert np.array_equal(cp.asnumpy(o), first)  # deterministic
    text = op.describe
    assert "mma.sync" in text and "bf16" in text and "causal" in text and "registers" in text
    assert "bytes local" in text


# --- timing -------------------------------------------------------------------------------


@pytest.mark.gpu
def test_flash_attention_time_returns_positive_seconds(cuda, cp, capability):
    if capability < 80:
        pytest.skip("FlashAttention needs compute capability 8.0")
    op, _, _ = make_op(cuda, cp, "bf16", (1, 8, 8, 1024, 1024, 64), False)
    op.run()  # warm-up (lazy loading)
    t1 = op.time(1)
    t20 = op.time(20)
    assert isinstance(t1, float) and t1 > 0.0
    assert t20 > t1
    assert t20 < 10.0
    flush = cp.empty(64 << 20, dtype=np.uint8)
    assert op.time(3, flush_ptr=flush.data.ptr, flush_bytes=flush.nbytes) > 0.0
    with pytest.raises(ValueError):
        op.time(0)
    with pytest.raises(ValueError):
        op.time(1, flush_ptr=0, flush_bytes=1024)


@pytest.mark.gpu
@pytest.mark.parametrize("causal", [False, True], ids=["full", "causal"])
@pytest.mark.parametrize("head_dim", [64, 128])
def test_flash_attention_throughput_report(cuda, cp, capability, head_dim, causal):
    """Prints TFLOP/s (FlashAttention convention: 4*B*H*S^2*D, causal half) at seqlen 4096."""
    if capability < 80:
        pytest.skip("FlashAttention needs compute capability 8.0")
    b, h, s = 4, 2048 // head_dim, 4096  # model dim 2048, batch x seqlen = 16k
    op, _, _ = make_op(cuda, cp, "bf16", (b, h, h, s, s, head_dim), causal)
    op.run()
    number = 10
    seconds = min(op.time(number) for _ in range(3)) / number
    flops = 4.0 * b * h * s * s * head_dim / (2.0 if causal else 1.0)
    tflops = flops / seconds / 1e12
    print(f"\nFlashAttention bf16 d={head_dim} {'causal' if causal else 'full'} "
          f"B={b} H={h} S={s}: {seconds * 1e3:.3f} ms, {tflops:.1f} TFLOP/s\n  {op.describe}")
    assert 0.0 < tflops < 5000.0  # faster than any GPU means the kernel skipped work


# --- argument validation (no GPU needed) -------------------------------------------------


def test_flash_attention_rejects_bad_arguments_before_cuda():
    """Argument errors are ValueError and come before any CUDA call, GPU or not."""
    cuda = built_cuda_module(needs="FlashAttention")
    p = 1 << 20  # never dereferenced: construction fails before touching the device

    def make(**changes):
        args = dict(device=0, batch=1, heads=4, kv_heads=2, seqlen_q=16, seqlen_k=16, head_dim=64,
                    dtype="bf16", causal=False, scale=0.125, q_ptr=p, k_ptr=p, v_ptr=p, o_ptr=p)
        args.update(changes)
        return cuda.FlashAttention(**args)

    for bad in (dict(head_dim=96), dict(head_dim=256), dict(heads=4, kv_heads=3),
                dict(kv_heads=0), dict(heads=0), dict(batch=0), dict(seqlen_q=0),
                dict(seqlen_k=0), dict(dtype="fp32"), dict(dtype="fp4"), dict(scale=0.0),
                dict(scale=-1.0), dict(scale=float("nan")), dict(q_ptr=0), dict(o_ptr=p + 2),
                dict(k_ptr=p + 8)):
        with pytest.raises(ValueError):
            make(**bad)
    if cuda.device_count() == 0:  # valid arguments reach the device check
        with pytest.raises(cuda.CudaError) as info:
            make()
        assert "\n" not in str(info.value) and "(in " in str(info.value)


def test_flash_attention_index_emulation(tmp_path):
    """Runs the host emulation of the kernel's tiling, swizzle, fragments, masks and softmax."""
    run_host_check(tmp_path, "flash_attn_check")
