"""The gemm suite on the cuda target: CPU-side logic here, the real thing on a GPU."""

import json

import numpy as np
import pytest

from aibench.cli import main
from aibench.dtypes import bf16_bits, decode
from aibench.peaks import gpu_peak
from aibench.suites.gemm.common import gemm_tolerance, sampled_error
from aibench.targets import Target, parse_target
from aibench.targets import cuda as cu


def test_peak_lookup_by_nvml_name():
    assert gpu_peak("NVIDIA H100 80GB HBM3", "bf16")["value"] == 989
    assert gpu_peak("NVIDIA H200", "fp8")["value"] == 1979
    assert gpu_peak("NVIDIA A100-SXM4-80GB", "tf32")["value"] == 156
    assert gpu_peak("NVIDIA A100-SXM4-80GB", "fp8") is None  # A100 has no fp8
    assert gpu_peak("Some Future GPU", "bf16") is None


def test_target_parsing():
    assert parse_target("cuda") == Target("cuda", 0)
    assert str(parse_target("cuda:3")) == "cuda:3"
    assert parse_target("jax:tpu").platform == "tpu"


def test_device_format_decoding():
    bf16 = np.array([0x3F80, 0xC000, 0x7FC0], dtype=np.uint16)
    out = decode(bf16, "bf16")
    assert out[0] == 1.0 and out[1] == -2.0 and np.isnan(out[2])
    fp8 = np.array([0x38, 0xB8, 0x7E, 0x01, 0x7F], dtype=np.uint8)  # 1, -1, 448, 2^-9, NaN
    out = decode(fp8, "fp8")
    assert list(out[:4]) == [1.0, -1.0, 448.0, 2.0**-9] and np.isnan(out[4])


def test_bf16_rounding_is_nearest_even():
    x = np.array([1.0, 1.0 + 2**-8, 1.0 + 3 * 2**-8, -2.5, np.nan], dtype=np.float32)
    bits = bf16_bits(x)
    assert list(bits[:4]) == [0x3F80, 0x3F80, 0x3F82, 0xC020] and bits[4] == 0x7FC0


def test_tolerance_catches_a_missing_k_block_in_bf16():
    rng = np.random.default_rng(0)
    k = 8192
    a = rng.uniform(-1, 1, (16, k))
    b = rng.uniform(-1, 1, (k, 16))
    ref = a @ b
    tol = gemm_tolerance("bf16", k, ref)
    rounded = (ref.astype(np.float32).view(np.uint32) & 0xFFFF0000).view(np.float32).astype(np.float64)
    assert sampled_error(a, b, rounded)[0] <= tol  # bf16 output rounding passes
    missing = ref - a[:, :256] @ b[:256, :]  # one 256-wide k block skipped
    assert sampled_error(a, b, missing)[0] > tol
    nan = ref.copy()
    nan[3, 3] = np.nan
    assert sampled_error(a, b, nan)[0] == np.inf


def test_cuda_impls_report_why_they_cannot_run():
    reason = cu.unavailable_reason(Target("cuda", 0))
    if reason is None:
        pytest.skip("a GPU is present")
    assert "CUDA" in reason or "GPU" in reason or "CuPy" in reason


@pytest.mark.gpu
def test_every_cuda_impl_and_dtype_validates_on_odd_shapes(tmp_path):
    out = tmp_path / "run.json"
    code = main(["run", "--target", "cuda", "--param", "m=1000,64", "--param", "n=1040", "--param", "k=528",
                 "--param", "dtype=fp64,fp32,tf32,bf16,fp16,fp8,int8", "--time-budget", "0.05",
                 "--output", str(out), "--no-asv"])
    cases = json.loads(out.read_text())["cases"]
    failed = [(c["impl"], c["case_id"], c["error"]) for c in cases if c["status"] == "failed"]
    assert not failed and code == 0
    passed = {(c["impl"], c["params"]["dtype"]) for c in cases if c["status"] == "passed"}
    for dtype in ("fp64", "fp32", "tf32", "bf16", "fp16", "fp8", "int8"):
        assert ("cublas", dtype) in passed
    assert ("aibench", "bf16") in passed and ("aibench", "fp16") in passed
    for c in cases:
        if c["status"] == "passed":
            assert c["telemetry"]["start"]["available"] is True  # NVML comes with the cuda extra
            expected = gpu_peak(cu.device_name(0), c["params"]["dtype"])
            if expected is None:  # a GPU or dtype the datasheet table lacks: no peak, and no bound from one
                assert c["peak"] is None and c["percent_of_peak"] is None and c["bound"] is None
            else:  # held to the datasheet peak (Suite.check_bound): never above it
                assert c["peak"]["value"] == expected["value"] and 0 < c["percent_of_peak"] <= 100
                assert c["bound"]["value"] == expected["value"]


@pytest.mark.gpu
def test_own_kernel_on_unaligned_shape(tmp_path):
    out = tmp_path / "run.json"
    code = main(["run", "--target", "cuda", "--impl", "aibench", "--param", "m=7", "--param", "n=63",
                 "--param", "k=1001", "--param", "dtype=bf16,fp16", "--time-budget", "0.05",
                 "--output", str(out), "--no-asv"])
    assert code == 0
    assert all(c["status"] == "passed" for c in json.loads(out.read_text())["cases"])
