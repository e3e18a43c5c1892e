"""aibench._cuda: fills, cuBLASLt GEMM and aibench's own tensor-core GEMM.

GPU tests (marked gpu) compare every result with a float64 numpy product of the very inputs
the GPU used (copied back and decoded), within a bound derived from the accumulation and
output precision of the dtype. CPU tests check the module without a GPU and run the host
emulation of the tensor-core kernel's index arithmetic.
"""

import numpy as np
import pytest

from aibench.dtypes import decode
from cuda_helpers import built_cuda_module, run_host_check

DEVICE = 0
DTYPES = ["fp64", "fp32", "tf32", "bf16", "fp16", "fp8", "int8"]

# Storage of inputs, and of the GEMM output, per aibench dtype (bf16 held as raw uint16).
INPUT_STORAGE = {
    "fp64": np.float64,
    "fp32": np.float32,
    "tf32": np.float32,
    "bf16": np.uint16,
    "fp16": np.float16,
    "fp8": np.uint8,
    "int8": np.int8,
}
OUTPUT = {  # dtype -> (output encoding, storage)
    "fp64": ("fp64", np.float64),
    "fp32": ("fp32", np.float32),
    "tf32": ("fp32", np.float32),
    "bf16": ("bf16", np.uint16),
    "fp16": ("fp16", np.float16),
    "fp8": ("bf16", np.uint16),
    "int8": ("int32", np.int32),
}
# Sentinels written to C before a GEMM, so that an element the kernel skipped fails.
SENTINEL = {
    "fp64": np.nan,
    "fp32": np.nan,
    "bf16": 0x7FC0,  # NaN
    "fp16": np.nan,
    "int32": -(2**31),
}
UNIT_ROUNDOFF = {"fp64": 2.0**-53, "fp32": 2.0**-24, "bf16": 2.0**-8, "fp16": 2.0**-11, "int32": 0.0}


def input_encoding(dtype):
    return "fp32" if dtype == "tf32" else dtype


# --- fixtures ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cuda():
    cuda = pytest.importorskip("aibench._cuda")
    if cuda.device_count() == 0:
        pytest.skip(f"no CUDA device: {cuda.cuda_unavailable_reason()}")
    return cuda



def random_device(cuda, cp, shape, dtype, seed, lo=-1.0, hi=1.0):
    array = cp.empty(shape, dtype=INPUT_STORAGE[dtype])
    cuda.fill_uniform(DEVICE, array.data.ptr, array.size, dtype, seed, lo, hi)
    return array


def run_gemm(cuda, cp, impl, dtype, m, n, k, b_layout="kn", a_offset=0, variant="auto"):
    """Runs one GEMM and checks it against float64 numpy; returns the plan."""
    lo, hi = (-8.0, 8.0) if dtype == "int8" else (-1.0, 1.0)
    a_store = random_device(cuda, cp, m * k + a_offset, dtype, seed=11, lo=lo, hi=hi)
    a = a_store[a_offset:].reshape(m, k)  # a_offset > 0: a pointer that is not 16-byte aligned
    b = random_device(cuda, cp, (k, n) if b_layout == "kn" else (n, k), dtype, 22, lo, hi)
    out_encoding, out_storage = OUTPUT[dtype]
    c = cp.full((m, n), SENTINEL[out_encoding], dtype=out_storage)
    if impl == "cublaslt":
        op = cuda.CublasLtGemm(DEVICE, m, n, k, dtype, a.data.ptr, b.data.ptr, c.data.ptr, b_layout=b_layout)
    else:
        op = cuda.MmaGemm(DEVICE, m, n, k, dtype, a.data.ptr, b.data.ptr, c.data.ptr, variant=variant)
    op.run()

    a_host = decode(cp.asnumpy(a), input_encoding(dtype))
    b_host = decode(cp.asnumpy(b), input_encoding(dtype))
    if b_layout == "nk":
        b_host = b_host.T
    got = decode(cp.asnumpy(c), out_encoding)
    ref = a_host @ b_host
    what = f"{impl} {dtype} m={m} n={n} k={k} b_layout={b_layout}"
    assert np.all(np.isfinite(got)), f"{what}: non-finite or unwritten output"
    if dtype == "int8":
        assert np.array_equal(got, ref), f"{what}: max error {np.abs(got - ref).max()}"
        return op
    # Inputs are exact in the compute type (tf32 fills are tf32-exact), products of two
    # inputs are exact in fp32, so the error is the accumulation (bounded by k unit
    # roundoffs of the accumulator times sum |a||b|, with a 4x margin for tensor-core
    # truncation) plus the rounding of the result to the output type. fp8 tensor cores
    # accumulate with fewer bits: allow 2^-10 of sum |a||b| on top.
    scale = np.abs(a_host) @ np.abs(b_host)
    acc_u = 2.0**-53 if dtype == "fp64" else 2.0**-24
    acc_err = (4.0 * k * acc_u + (2.0**-10 if dtype == "fp8" else 0.0)) * scale
    tol = acc_err + UNIT_ROUNDOFF[out_encoding] * (np.abs(ref) + acc_err) + 1e-300
    err = np.abs(got - ref)
    worst = np.unravel_index(np.argmax(err - tol), err.shape)
    assert np.all(err <= tol), (
        f"{what}: {(err > tol).sum()} elements out of tolerance; worst at {worst}: "
        f"got {got[worst]}, expected {ref[worst]}, tolerance {tol[worst]}"
    )
    return op


# --- fill_uniform -----------------------------------------------------------------------


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", DTYPES)
def test_fill_uniform_range_and_determinism(cuda, cp, dtype):
    lo, hi = (-5.0, 7.0) if dtype == "int8" else (-0.75, 0.5)
    x = random_device(cuda, cp, 100_003, dtype, seed=7, lo=lo, hi=hi)
    values = decode(cp.asnumpy(x), input_encoding(dtype))
    assert np.all(np.isfinite(values))
    assert values.min() >= lo and values.max() <= hi
    assert np.unique(values).size > (12 if dtype == "int8" else 10)
    # A reasonable spread over the range, not a constant or a corner.
    assert values.min() < lo + 0.1 * (hi - lo) and values.max() > hi - 0.1 * (hi - lo)
    again = random_device(cuda, cp, 100_003, dtype, seed=7, lo=lo, hi=hi)
    assert np.array_equal(cp.asnumpy(again).view(np.uint8), cp.asnumpy(x).view(np.uint8))
    other = random_device(cuda, cp, 100_003, dtype, seed=8, lo=lo, hi=hi)
    assert not np.array_equal(cp.asnumpy(other).view(np.uint8), cp.asnumpy(x).view(np.uint8))
    if dtype == "int8":
        assert set(np.unique(values)) == set(range(-5, 8))
    if dtype == "tf32":  # tf32-exact: the 13 low mantissa bits are zero
        assert np.all(cp.asnumpy(x).view(np.uint32) & 0x1FFF == 0)


@pytest.mark.gpu
def test_fill_uniform_rejects_bad_arguments(cuda, cp):
    x = cp.empty(16, dtype=np.float32)
    with pytest.raises(ValueError):
        cuda.fill_uniform(DEVICE, x.data.ptr, 16, "fp4", 1)
    with pytest.raises(ValueError):
        cuda.fill_uniform(DEVICE, x.data.ptr, 16, "fp32", 1, 1.0, -1.0)
    with pytest.raises(ValueError):
        cuda.fill_uniform(cuda.device_count(), x.data.ptr, 16, "fp32", 1)
    with pytest.raises(ValueError):
        cuda.fill_uniform(DEVICE, x.data.ptr + 1, 4, "fp32", 1)


# --- cuBLASLt -----------------------------------------------------------------------------

FLOAT_SHAPES = [(64, 64, 64), (1, 7, 63), (1000, 63, 129), (129, 257, 72), (256, 256, 256)]
# fp8 needs k, n multiples of 16; int8 multiples of 4 (cuBLASLt's documented rules).
LOW_SHAPES = [(64, 64, 64), (256, 128, 512), (1000, 64, 128), (96, 48, 32)]


@pytest.mark.gpu
@pytest.mark.parametrize("b_layout", ["kn", "nk"])
@pytest.mark.parametrize("shape", FLOAT_SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("dtype", ["fp64", "fp32", "tf32", "bf16", "fp16"])
def test_cublaslt_float_dtypes(cuda, cp, capability, dtype, shape, b_layout):
    if dtype in ("bf16", "tf32") and capability < 80:
        pytest.skip(f"{dtype} needs compute capability 8.0")
    op = run_gemm(cuda, cp, "cublaslt", dtype, *shape, b_layout=b_layout)
    assert "algo=" in op.algo_info and "waves=" in op.algo_info


@pytest.mark.gpu
@pytest.mark.parametrize("shape", LOW_SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("dtype", ["fp8", "int8"])
def test_cublaslt_fp8_int8(cuda, cp, capability, dtype, shape):
    if dtype == "fp8" and capability < 89:
        a = cp.empty(64 * 64, dtype=np.uint8)
        c = cp.empty(64 * 64, dtype=np.uint16)
        with pytest.raises(cuda.CudaError, match="8.9"):
            cuda.CublasLtGemm(DEVICE, 64, 64, 64, "fp8", a.data.ptr, a.data.ptr, c.data.ptr, b_layout="nk")
        return
    run_gemm(cuda, cp, "cublaslt", dtype, *shape, b_layout="nk")


@pytest.mark.gpu
def test_cublaslt_rejects_unsupported_combinations(cuda, cp):
    buf = cp.zeros(1 << 20, dtype=np.uint8)
    p = buf.data.ptr
    with pytest.raises(ValueError, match="dtype"):
        cuda.CublasLtGemm(DEVICE, 64, 64, 64, "fp4", p, p, p)
    with pytest.raises(ValueError, match="b_layout"):
        cuda.CublasLtGemm(DEVICE, 64, 64, 64, "fp32", p, p, p, b_layout="mn")
    with pytest.raises(ValueError, match="nk"):
        cuda.CublasLtGemm(DEVICE, 64, 64, 64, "int8", p, p, p, b_layout="kn")
    with pytest.raises(ValueError, match="multiples of 4"):
        cuda.CublasLtGemm(DEVICE, 64, 64, 63, "int8", p, p, p, b_layout="nk")
    with pytest.raises(ValueError, match="multiples of 16"):
        cuda.CublasLtGemm(DEVICE, 64, 60, 64, "fp8", p, p, p, b_layout="nk")
    with pytest.raises(ValueError):
        cuda.CublasLtGemm(DEVICE, 0, 64, 64, "fp32", p, p, p)


# --- aibench's tensor-core GEMM -----------------------------------------------------------

MMA_SHAPES = [
    (1, 1, 1),
    (7, 63, 1000),
    (1000, 1, 63),
    (129, 257, 72),
    (130, 264, 40),  # 16-byte rows: the cp.async path, with partial tiles on every edge
    (256, 256, 256),
    (2048, 2048, 2048),
    (8, 8, 8),  # the wgmma path: one tile, mostly TMA zero fill
    (200, 72, 520),  # k tail (520 = 8*64 + 8), 9 k tiles wrap the 4-stage pipeline
    (300, 520, 1032),  # n tail of 8 (whole 64-column B boxes out of bounds), 17 k tiles
]
MMA_VARIANTS = ["auto", "mma_sync", "wgmma"]


@pytest.fixture(scope="module")
def has_wgmma(cuda, capability):
    """The wgmma kernel can run: compute capability 9.0 and a module built with sm_90a."""
    archs = str(cuda.build_info()["architectures"]).replace(";", ",").split(",")
    return capability == 90 and any(a.strip().startswith("90a") for a in archs)


@pytest.mark.gpu
@pytest.mark.parametrize("variant", MMA_VARIANTS)
@pytest.mark.parametrize("shape", MMA_SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("dtype", ["bf16", "fp16"])
def test_mma_gemm(cuda, cp, capability, has_wgmma, monkeypatch, dtype, shape, variant):
    if capability < 80:
        pytest.skip("MmaGemm needs compute capability 8.0")
    monkeypatch.delenv("AIBENCH_MMA_GEMM_VARIANT", raising=False)
    m, n, k = shape
    aligned = n % 8 == 0 and k % 8 == 0
    if variant == "wgmma":
        if not has_wgmma:
            pytest.skip("the wgmma kernel needs compute capability 9.0 and a module built with 90a")
        if not aligned:
            buf = cp.zeros(m * k + k * n + m * n + 64, dtype=np.uint16)
            with pytest.raises(ValueError, match="wgmma"):
                cuda.MmaGemm(DEVICE, m, n, k, dtype, buf.data.ptr, buf.data.ptr, buf.data.ptr, variant="wgmma")
            return
    op = run_gemm(cuda, cp, "mma", dtype, *shape, variant=variant)
    expect_wgmma = variant == "wgmma" or (variant == "auto" and has_wgmma and aligned)
    if expect_wgmma:
        assert op.describe.startswith("wgmma"), op.describe
    else:
        assert op.describe.startswith("mma.sync"), op.describe
        assert ("cp.async" in op.describe) == aligned, op.describe


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", ["bf16", "fp16"])
def test_mma_gemm_wgmma_repeatable_and_matches_mma_sync(cuda, cp, has_wgmma, dtype):
    """wgmma twice on fresh inputs: bit-identical (a race would move it); and within a rounding
    step or two of the mma.sync kernel on the same inputs."""
    if not has_wgmma:
        pytest.skip("the wgmma kernel needs compute capability 9.0 and a module built with 90a")
    m, n, k = 1000, 776, 2056  # partial tiles on every edge, 33 k tiles
    a = random_device(cuda, cp, (m, k), dtype, 31)
    b = random_device(cuda, cp, (k, n), dtype, 32)
    outs = []
    for variant in ("wgmma", "wgmma", "mma_sync"):
        c = cp.full((m, n), SENTINEL[dtype], dtype=OUTPUT[dtype][1])
        op = cuda.MmaGemm(DEVICE, m, n, k, dtype, a.data.ptr, b.data.ptr, c.data.ptr, variant=variant)
        assert op.describe.startswith("wgmma" if variant == "wgmma" else "mma.sync"), op.describe
        op.run()
        outs.append(cp.asnumpy(c))
    assert np.array_equal(outs[0].view(np.uint16), outs[1].view(np.uint16)), "wgmma results differ between runs"
    x, y = decode(outs[0], dtype), decode(outs[2], dtype)
    assert np.all(np.isfinite(x)) and np.all(np.isfinite(y))
    step = 2.0**-7 if dtype == "bf16" else 2.0**-10
    assert np.all(np.abs(x - y) <= step * np.maximum(np.abs(x), np.abs(y)) + 1e-2)


@pytest.mark.gpu
def test_mma_gemm_wgmma_unavailable_raises(cuda, cp, capability, has_wgmma, monkeypatch):
    if capability < 80:
        pytest.skip("MmaGemm needs compute capability 8.0")
    if has_wgmma:
        pytest.skip("the wgmma kernel is available here")
    monkeypatch.delenv("AIBENCH_MMA_GEMM_VARIANT", raising=False)
    buf = cp.zeros(1 << 16, dtype=np.uint16)
    p = buf.data.ptr
    with pytest.raises(cuda.CudaError, match="wgmma"):
        cuda.MmaGemm(DEVICE, 64, 64, 64, "bf16", p, p, p, variant="wgmma")
    op = cuda.MmaGemm(DEVICE, 64, 64, 64, "bf16", p, p, p)  # auto falls back
    assert op.describe.startswith("mma.sync") and "wgmma not used" in op.describe, op.describe


@pytest.mark.gpu
def test_mma_gemm_unaligned_pointer_uses_generic_path(cuda, cp, capability):
    if capability < 80:
        pytest.skip("MmaGemm needs compute capability 8.0")
    op = run_gemm(cuda, cp, "mma", "bf16", 136, 264, 64, a_offset=1)
    assert "generic" in op.describe


@pytest.mark.gpu
def test_mma_gemm_matches_cublaslt(cuda, cp, capability):
    """Same inputs, both implementations: bf16 results within an output rounding or two."""
    if capability < 80:
        pytest.skip("MmaGemm needs compute capability 8.0")
    m, n, k = 512, 384, 256
    a = random_device(cuda, cp, (m, k), "bf16", 5)
    b = random_device(cuda, cp, (k, n), "bf16", 6)
    c1 = cp.zeros((m, n), dtype=np.uint16)
    c2 = cp.zeros((m, n), dtype=np.uint16)
    cuda.MmaGemm(DEVICE, m, n, k, "bf16", a.data.ptr, b.data.ptr, c1.data.ptr).run()
    cuda.CublasLtGemm(DEVICE, m, n, k, "bf16", a.data.ptr, b.data.ptr, c2.data.ptr).run()
    x, y = decode(cp.asnumpy(c1), "bf16"), decode(cp.asnumpy(c2), "bf16")
    # Two fp32 summation orders, each rounded to bf16: a rounding step or two apart.
    assert np.all(np.abs(x - y) <= 2.0**-7 * np.maximum(np.abs(x), np.abs(y)) + 1e-2)


@pytest.mark.gpu
def test_mma_gemm_rejects_bad_arguments(cuda, cp):
    buf = cp.zeros(1 << 16, dtype=np.uint16)
    p = buf.data.ptr
    with pytest.raises(ValueError, match="bf16"):
        cuda.MmaGemm(DEVICE, 64, 64, 64, "fp32", p, p, p)
    with pytest.raises(ValueError):
        cuda.MmaGemm(DEVICE, 64, 64, 64, "fp4", p, p, p)
    with pytest.raises(ValueError):
        cuda.MmaGemm(DEVICE, 64, 0, 64, "bf16", p, p, p)
    with pytest.raises(ValueError):
        cuda.MmaGemm(DEVICE, 64, 64, 64, "bf16", p + 1, p, p)
    with pytest.raises(ValueError, match="variant"):
        cuda.MmaGemm(DEVICE, 64, 64, 64, "bf16", p, p, p, variant="hopper")


# --- timing -------------------------------------------------------------------------------


@pytest.mark.gpu
@pytest.mark.parametrize("impl", ["cublaslt", "mma"])
def test_time_returns_positive_seconds(cuda, cp, capability, impl):
    if capability < 80:
        pytest.skip("bf16 needs compute capability 8.0")
    m = n = k = 512
    a = random_device(cuda, cp, (m, k), "bf16", 1)
    b = random_device(cuda, cp, (k, n), "bf16", 2)
    c = cp.zeros((m, n), dtype=np.uint16)
    cls = cuda.CublasLtGemm if impl == "cublaslt" else cuda.MmaGemm
    op = cls(DEVICE, m, n, k, "bf16", a.data.ptr, b.data.ptr, c.data.ptr)
    op.run()  # warm-up: the first launch also loads the kernel (CUDA lazy loading)
    t1 = op.time(1)
    t20 = op.time(20)
    assert isinstance(t1, float) and t1 > 0.0
    assert t20 > t1  # twenty launches take longer than one
    assert t20 < 10.0  # a 512^3 GEMM takes microseconds: seconds means a broken timer
    flush = cp.empty(64 << 20, dtype=np.uint8)
    t_flush = op.time(3, flush_ptr=flush.data.ptr, flush_bytes=flush.nbytes)
    assert t_flush > 0.0
    with pytest.raises(ValueError):
        op.time(0)
    with pytest.raises(ValueError):
        op.time(1, flush_ptr=0, flush_bytes=1024)


@pytest.mark.gpu
def test_device_queries(cuda):
    props = cuda.device_properties(DEVICE)
    for key in ("name", "major", "minor", "multiprocessors", "l2_cache_bytes",
                "total_memory_bytes", "memory_bus_width", "pci_bus_id"):
        assert key in props
    assert props["multiprocessors"] > 0 and props["total_memory_bytes"] > 0
    assert cuda.cuda_unavailable_reason() is None
    assert cuda.driver_version() > 0 and cuda.runtime_version() > 0
    assert cuda.cublaslt_version() > 0
    with pytest.raises(ValueError):
        cuda.device_properties(cuda.device_count())


# --- CPU-only ---------------------------------------------------------------------------


def test_cuda_module_without_device_reports_why():
    cuda = built_cuda_module()
    if cuda.device_count() > 0:
        pytest.skip("a CUDA device is present")
    reason = cuda.cuda_unavailable_reason()
    assert isinstance(reason, str) and reason.strip()
    assert issubclass(cuda.CudaError, RuntimeError)
    with pytest.raises(cuda.CudaError) as info:
        cuda.fill_uniform(0, 1 << 20, 16, "fp32", 1)
    assert "\n" not in str(info.value) and "(in " in str(info.value)
    with pytest.raises(ValueError):  # argument errors come before any CUDA call
        cuda.MmaGemm(0, 8, 8, 8, "fp64", 256, 256, 256)
    with pytest.raises(ValueError, match="variant"):
        cuda.MmaGemm(0, 8, 8, 8, "bf16", 256, 256, 256, variant="hopper")
    with pytest.raises(ValueError, match="wgmma"):
        cuda.MmaGemm(0, 8, 8, 7, "bf16", 256, 256, 256, variant="wgmma")
    info_dict = cuda.build_info()
    assert info_dict["cuda_compiler"] and info_dict["architectures"]
    assert cuda.runtime_version() > 0 and cuda.cublaslt_version() > 0


def test_mma_kernel_index_emulation(tmp_path):
    """Runs the host emulation of MmaGemm's tiling, swizzles and fragment layouts."""
    run_host_check(tmp_path, "mma_layout_check")
