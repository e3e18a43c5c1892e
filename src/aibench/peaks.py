"""Datasheet dense peaks of accelerators: TFLOP/s, and TOPS for int8.

A GPU is found by its PCI device ID (vendor:device, the surest: sysfs or NVML) or by the
exact device name NVML, CUDA or JAX reports (case and spacing aside): never by substring,
so an "H200 NVL" does not get the H200 SXM's peaks, nor a "GB200" the B200's.

Figures are dense: where a datasheet gives only the figure with 2:4 sparsity, it is
halved. fp64 here is the FP64 *tensor-core* (matrix) rate, the one DGEMM runs at; the
datasheets' FP64 vector rate is lower. CPU peaks are not in this table: they are computed
from a measured clock (targets/cpu.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class GpuRow:
    model: str                      # what the source says is reported
    names: tuple[str, ...]          # exact device names (NVML / CUDA / JAX device_kind)
    pci_ids: tuple[str, ...]        # "vvvv:dddd", lower-case hex (pci.ids)
    peaks: dict[str, float]         # dtype -> dense TFLOP/s (int8: TOPS)
    memory_tbps: float | None = None  # datasheet GPU memory bandwidth, TB/s (HBM; L40S: GDDR6)
    # (generation, lanes) of the PCIe link to the host; None: the host link is not PCIe
    # (NVLink-C2C) or no datasheet gives it.
    pcie: tuple[int, int] | None = None


# fp64 tensor / fp32 / tf32 / bf16 / fp16 / fp8 / int8, dense. PCI IDs: the PCI ID
# Repository (pci-ids.ucw.cz, pci.ids). Memory bandwidth (last field, TB/s) from the same
# datasheets' "GPU memory bandwidth" row: H100 SXM 3.35, H100 PCIe 2, H100 NVL 3.9; H200
# SXM and NVL 4.8; GH200 4 (96 GB HBM3) or 4.9 (144 GB HBM3e): one row for both, so 4.9,
# the larger (a bound must not be below either part); HGX B200 8 per GPU, GB200 8 per GPU;
# A100 40 GB 1.555, SXM4 80 GB 2.039, PCIe 80 GB 1.935; L40S 0.864 (GDDR6); MI300X 5.3.
# PCIe host link (pcie=) from the same datasheets' interconnect row, whose GB/s count both
# directions before encoding: H100 (SXM, PCIe, NVL) and H200 (SXM, NVL) "PCIe Gen5: 128GB/s"
# (Gen5 x16); A100 "PCIe Gen4: 64GB/s" (Gen4 x16); L40S "PCIe Gen4 x16: 64GB/s
# bidirectional"; MI300X "PCIe Gen 5 x16". GH200 and GB200 reach the host over NVLink-C2C
# (no PCIe bound); B200: not given here (the HGX B200 datasheet row is not at hand).
_H100_SXM = {"fp64": 67, "fp32": 67, "tf32": 494.5, "bf16": 989, "fp16": 989, "fp8": 1979, "int8": 1979}
_NVL = {"fp64": 60, "fp32": 60, "tf32": 417.5, "bf16": 835.5, "fp16": 835.5, "fp8": 1670.5, "int8": 1670.5}
_A100 = {"fp64": 19.5, "fp32": 19.5, "tf32": 156, "bf16": 312, "fp16": 312, "int8": 624}
GPU_ROWS: tuple[GpuRow, ...] = (
    # NVIDIA H100 Tensor Core GPU datasheet (2023), SXM column: FP64 TC 67, FP32 67, TF32
    # 989*, BF16/FP16 1979*, FP8 3958*, INT8 3958* TOPS (* with sparsity). 10de:2330.
    GpuRow("H100 SXM5 80GB", ("NVIDIA H100 80GB HBM3", "NVIDIA H100 SXM5 80GB"), ("10de:2330",), _H100_SXM, 3.35,
           pcie=(5, 16)),
    # Same datasheet, PCIe column: FP64 TC 51, FP32 51, TF32 756*, BF16/FP16 1513*, FP8
    # 3026*, INT8 3026*. 10de:2331.
    GpuRow("H100 PCIe", ("NVIDIA H100 PCIe",), ("10de:2331",),
           {"fp64": 51, "fp32": 51, "tf32": 378, "bf16": 756.5, "fp16": 756.5, "fp8": 1513, "int8": 1513}, 2.0, pcie=(5, 16)),
    # Same datasheet, H100 NVL column (per GPU): FP64 TC 60, FP32 60, TF32 835*, BF16/FP16
    # 1671*, FP8 3341*, INT8 3341*. pci.ids: 10de:2321 "H100L 94GB".
    GpuRow("H100 NVL", ("NVIDIA H100 NVL",), ("10de:2321",), _NVL, 3.9, pcie=(5, 16)),
    # NVIDIA H200 Tensor Core GPU datasheet (2024), H200 SXM column: as H100 SXM.
    # 10de:2335 "H200 SXM 141GB".
    GpuRow("H200 SXM", ("NVIDIA H200", "NVIDIA H200 SXM 141GB"), ("10de:2335",), _H100_SXM, 4.8,
           pcie=(5, 16)),
    # Same datasheet, H200 NVL column: FP64 TC 60, FP32 60, TF32 835*, BF16/FP16 1671*,
    # FP8 3341*, INT8 3341*. 10de:233b.
    GpuRow("H200 NVL", ("NVIDIA H200 NVL",), ("10de:233b",), _NVL, 4.8, pcie=(5, 16)),
    # NVIDIA GH200 Grace Hopper Superchip datasheet (2024): FP64 TC 67, FP32 67, TF32 989*,
    # BF16/FP16 1979*, FP8 3958*, INT8 3958*. 10de:2342 (120/480 GB), 10de:2348 (144 GB HBM3e).
    GpuRow("GH200", ("NVIDIA GH200 480GB", "NVIDIA GH200 120GB", "NVIDIA GH200 144G HBM3e"),
           ("10de:2342", "10de:2348"), _H100_SXM, 4.9),
    # NVIDIA Blackwell datasheet (GB200 NVL72 / HGX B200), "Individual Blackwell GPU
    # Specifications", HGX B200 column: FP64/FP64 TC 37, FP32 75, TF32 2.2 P*, BF16/FP16
    # 4.5 P*, FP8 9 P*, INT8 9 P* (OPS). 10de:2901, 10de:2909.
    GpuRow("B200", ("NVIDIA B200",), ("10de:2901", "10de:2909"),
           {"fp64": 37, "fp32": 75, "tf32": 1100, "bf16": 2250, "fp16": 2250, "fp8": 4500, "int8": 4500}, 8.0),
    # Same table, GB200 NVL72 column (per GPU): FP64/FP64 TC 40, FP32 80, TF32 2.5 P*,
    # BF16/FP16 5 P*, FP8 10 P*, INT8 10 P*. 10de:2941.
    GpuRow("GB200", ("NVIDIA GB200",), ("10de:2941",),
           {"fp64": 40, "fp32": 80, "tf32": 1250, "bf16": 2500, "fp16": 2500, "fp8": 5000, "int8": 5000}, 8.0),
    # NVIDIA A100 Tensor Core GPU datasheet (2021): the same figures for 40 and 80 GB, SXM
    # and PCIe: FP64 TC 19.5, FP32 19.5, TF32 156, BF16/FP16 312, INT8 624 (dense given).
    GpuRow("A100 SXM4 40GB", ("NVIDIA A100-SXM4-40GB",), ("10de:20b0",), _A100, 1.555, pcie=(4, 16)),
    GpuRow("A100 SXM4 80GB", ("NVIDIA A100-SXM4-80GB",), ("10de:20b2",), _A100, 2.039, pcie=(4, 16)),
    GpuRow("A100 PCIe 40GB", ("NVIDIA A100-PCIE-40GB",), ("10de:20b1", "10de:20f1"), _A100, 1.555,
           pcie=(4, 16)),
    GpuRow("A100 PCIe 80GB", ("NVIDIA A100 80GB PCIe",), ("10de:20b5",), _A100, 1.935, pcie=(4, 16)),
    # NVIDIA L40S datasheet (2023): FP32 91.6, TF32 183, BF16/FP16 362.05, FP8 733, INT8 733
    # (dense given beside sparse); no FP64 figure. 10de:26b9.
    GpuRow("L40S", ("NVIDIA L40S",), ("10de:26b9",),
           {"fp32": 91.6, "tf32": 183, "bf16": 362.05, "fp16": 362.05, "fp8": 733, "int8": 733}, 0.864, pcie=(4, 16)),
    # AMD Instinct MI300X data sheet (2023): FP64 matrix 163.4, FP32 matrix 163.4, TF32
    # 653.7, BF16/FP16 1307.4, FP8 2614.9, INT8 2614.9 (dense given beside sparse). 1002:74a1.
    GpuRow("MI300X", ("AMD Instinct MI300X",), ("1002:74a1",),
           {"fp64": 163.4, "fp32": 163.4, "tf32": 653.7, "bf16": 1307.4, "fp16": 1307.4, "fp8": 2614.9,
            "int8": 2614.9}, 5.3, pcie=(5, 16)),
)

TPU_PEAKS_TFLOPS: dict[str, dict[str, float]] = {
    "v5e": {"bf16": 197},
    "v5 lite": {"bf16": 197},
    "v5p": {"bf16": 459},
    "v6e": {"bf16": 918},
    "v6 lite": {"bf16": 918},
}


def _normal_name(name: str) -> str:
    return " ".join(name.lower().split())


def gpu_row(device_name: str, pci_id: str | None = None) -> GpuRow | None:
    """The row of a GPU: by PCI ID ("10de:2335") when given and known, else by exact name."""
    if pci_id:
        wanted = pci_id.lower()
        for row in GPU_ROWS:
            if wanted in row.pci_ids:
                return row
    name = _normal_name(device_name)
    return next((row for row in GPU_ROWS if name in {_normal_name(n) for n in row.names}), None)


def _peak(value: float | None, dtype: str, source: str) -> dict | None:
    if value is None:
        return None
    return {"value": float(value), "unit": "TOPS" if dtype == "int8" else "TFLOP/s", "source": source,
            "kind": "datasheet"}


def gpu_peak(device_name: str, dtype: str, pci_id: str | None = None) -> dict | None:
    """Datasheet dense peak of `dtype` on this GPU, or None (unknown GPU or dtype)."""
    row = gpu_row(device_name, pci_id)
    if row is None:
        return None
    return _peak(row.peaks.get(dtype), dtype, f"datasheet dense peak, {row.model} {dtype}")


def gpu_memory_peak(device_name: str, pci_id: str | None = None) -> dict | None:
    """Datasheet memory bandwidth of this GPU in GB/s ({value, unit, source, kind}), or
    None (unknown GPU, or no figure in its row)."""
    row = gpu_row(device_name, pci_id)
    if row is None or row.memory_tbps is None:
        return None
    return {"value": row.memory_tbps * 1000, "unit": "GB/s", "kind": "datasheet",
            "source": f"datasheet memory bandwidth, {row.model}: {row.memory_tbps:g} TB/s"}


# GT/s per lane and line encoding by PCIe generation (PCI-SIG base specifications; Gen6
# FLIT mode carries 242 data bytes of 256).
PCIE_GENERATIONS = {1: (2.5, 0.8), 2: (5.0, 0.8), 3: (8.0, 128 / 130), 4: (16.0, 128 / 130), 5: (32.0, 128 / 130),
                    6: (64.0, 242 / 256)}


def pcie_bandwidth(generation: int, lanes: int) -> tuple[float, str]:
    """Bytes per second one way over a PCIe link after line encoding, and the working
    ("32 GT/s x 16 x 0.9846 line encoding = 63.02 GB/s"); KeyError for an unknown generation."""
    gts, encoding = PCIE_GENERATIONS[generation]
    rate = gts * 1e9 * lanes * encoding / 8
    return rate, f"{gts:g} GT/s x {lanes} x {encoding:.4g} line encoding = {rate / 1e9:.4g} GB/s"


def pci_id_of(bus_id: str, root: str = "/") -> str | None:
    """"vvvv:dddd" of the PCI device at `bus_id` (CUDA's "00000000:19:00.0" or sysfs's
    "0000:19:00.0") from sysfs, or None if unreadable."""
    try:
        domain, bus, device_function = bus_id.strip().lower().split(":")
        device = Path(root, "sys/bus/pci/devices", f"{int(domain, 16):04x}:{bus}:{device_function}")
        vendor_id = (device / "vendor").read_text().strip().removeprefix("0x")
        device_id = (device / "device").read_text().strip().removeprefix("0x")
    except (OSError, ValueError):
        return None
    return f"{vendor_id}:{device_id}"


def tpu_peak(device_kind: str, dtype: str) -> dict | None:
    """TPU peaks by generation, found in JAX's device_kind ("TPU v5 lite", ...)."""
    kind = device_kind.lower()
    for key in sorted(TPU_PEAKS_TFLOPS, key=len, reverse=True):
        if key in kind:
            return _peak(TPU_PEAKS_TFLOPS[key].get(dtype), dtype, f"datasheet dense peak, TPU {key} {dtype}")
    return None
