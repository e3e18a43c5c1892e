"""Datasheet dense peaks of accelerators, TFLOP/s (TOPS for int8), from the vendors' product
datasheets (NVIDIA H100/H200/H200 NVL/GH200/L40S/A100/B200, AMD MI300X; sparse figures halved).

Keys are matched against the device name that NVML (or JAX) reports, longest key first.
fp64 here is the FP64 *tensor-core* (matrix) rate, the one DGEMM runs at (H100/H200 67,
A100 19.5, B200 40, MI300X 163.4 matrix); the datasheets' FP64 vector rate is lower,
and cuBLAS DGEMM exceeds it. CPU peaks are not in this table: they are computed from a
measured clock (targets/cpu.py).
"""

from __future__ import annotations

GPU_PEAKS_TFLOPS: dict[str, dict[str, float]] = {
    # fp64 tensor / fp32 / tf32 / bf16 = fp16 / fp8 / int8, dense
    "H100 SXM": {"fp64": 67, "fp32": 67, "tf32": 494.5, "bf16": 989, "fp16": 989, "fp8": 1979, "int8": 1979},
    "H100 80GB HBM3": {"fp64": 67, "fp32": 67, "tf32": 494.5, "bf16": 989, "fp16": 989, "fp8": 1979, "int8": 1979},
    "H200 NVL": {"fp64": 60, "fp32": 60, "tf32": 417.5, "bf16": 835.5, "fp16": 835.5, "fp8": 1670.5, "int8": 1670.5},
    "GH200": {"fp64": 67, "fp32": 67, "tf32": 494.5, "bf16": 989, "fp16": 989, "fp8": 1979, "int8": 1979},
    "L40S": {"fp32": 91.6, "tf32": 183, "bf16": 362.05, "fp16": 362.05, "fp8": 733, "int8": 733},
    "H200": {"fp64": 67, "fp32": 67, "tf32": 494.5, "bf16": 989, "fp16": 989, "fp8": 1979, "int8": 1979},
    "A100-SXM": {"fp64": 19.5, "fp32": 19.5, "tf32": 156, "bf16": 312, "fp16": 312, "int8": 624},
    "A100 SXM": {"fp64": 19.5, "fp32": 19.5, "tf32": 156, "bf16": 312, "fp16": 312, "int8": 624},
    "B200": {"fp64": 40, "fp32": 75, "tf32": 1100, "bf16": 2250, "fp16": 2250, "fp8": 4500, "int8": 4500},
    "MI300X": {"fp64": 163.4, "fp32": 163.4, "tf32": 653.7, "bf16": 1307, "fp16": 1307, "fp8": 2615, "int8": 2615},
}

TPU_PEAKS_TFLOPS: dict[str, dict[str, float]] = {
    "v5e": {"bf16": 197},
    "v5 lite": {"bf16": 197},
    "v5p": {"bf16": 459},
    "v6e": {"bf16": 918},
    "v6 lite": {"bf16": 918},
}


def _lookup(table: dict[str, dict[str, float]], device_name: str, dtype: str) -> dict | None:
    name = device_name.lower()
    for key in sorted(table, key=len, reverse=True):
        if key.lower() in name:
            value = table[key].get(dtype)
            if value is None:
                return None
            return {"value": float(value), "unit": "TFLOP/s", "source": f"datasheet dense peak, {key} {dtype}"}
    return None


def gpu_peak(device_name: str, dtype: str) -> dict | None:
    return _lookup(GPU_PEAKS_TFLOPS, device_name, dtype)


def tpu_peak(device_kind: str, dtype: str) -> dict | None:
    return _lookup(TPU_PEAKS_TFLOPS, device_kind, dtype)
