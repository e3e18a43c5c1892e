"""A double of the GPU for tests: fake `aibench._cuda`, `cupy` (with `cupy.cuda.nccl`) and
`pynvml` on one simulated device (device.py), and torch's CUDA calls that the suites
make, recorded as kernels of that device. Test-only: it lives under tests/, aibench
never imports it, and no flag or environment variable of aibench reaches it.

    gpus = install(monkeypatch)          # in a test or fixture: sys.modules patched
    gpus.kernel_seconds["gemm"] = 2e-3   # every GEMM launch takes 2 ms on the device
    main(["run", "--target", "cuda", ...])

`install_for_process()` does the same without monkeypatch, for the MPI ranks that
tests/gpu_double/launch.py starts.
"""

from __future__ import annotations

import sys

from .device import GpuSpec, SimulatedGpus, boards

__all__ = ["GpuSpec", "SimulatedGpus", "boards", "install", "install_for_process", "fake_modules"]


def fake_modules(gpus: SimulatedGpus) -> dict:
    from . import fake_cuda_ext, fake_cupy, fake_nccl, fake_nvml

    modules = fake_cupy.build(gpus, fake_nccl.build(gpus))
    modules["aibench._cuda"] = fake_cuda_ext.build(gpus)
    modules["pynvml"] = fake_nvml.build(gpus)
    return modules


def _torch_patches(gpus: SimulatedGpus) -> list[tuple[object, str, object]]:
    """(owner, attribute, replacement) for torch's calls on the cuda target: the real CPU
    op computes (on tensors sharing the double's numpy memory through DLPack), and the
    device records one kernel of its told time."""
    try:
        import torch
        import torch.nn.functional as F
    except ImportError:
        return []

    def recorded(fn, kind):
        def call(*args, **kwargs):
            out = fn(*args, **kwargs)
            gpus.kernel(kind, f"torch {fn.__name__}")
            return out
        return call

    return [(torch, "matmul", recorded(torch.matmul, "gemm")),
            (torch, "_int_mm", recorded(torch._int_mm, "gemm")),
            (torch, "_scaled_mm", recorded(torch._scaled_mm, "gemm")),
            (F, "scaled_dot_product_attention", recorded(F.scaled_dot_product_attention, "attention")),
            (torch.cuda, "synchronize", lambda device=None: gpus.synchronize("torch.cuda.synchronize"))]


def _reset_caches() -> None:
    """aibench caches what it found about the GPU: forget it when the double comes and goes."""
    from aibench.targets import cuda as cu

    cu.cuda_module.cache_clear()
    cu.device_properties.cache_clear()


def install(monkeypatch, gpus: SimulatedGpus | None = None) -> SimulatedGpus:
    import aibench

    gpus = gpus or SimulatedGpus()
    for name, module in fake_modules(gpus).items():
        monkeypatch.setitem(sys.modules, name, module)
    monkeypatch.setattr(aibench, "_cuda", sys.modules["aibench._cuda"], raising=False)
    for owner, attr, value in _torch_patches(gpus):
        monkeypatch.setattr(owner, attr, value)
    _reset_caches()
    return gpus


def install_for_process(gpus: SimulatedGpus | None = None) -> SimulatedGpus:
    import aibench

    gpus = gpus or SimulatedGpus()
    modules = fake_modules(gpus)
    sys.modules.update(modules)
    aibench._cuda = modules["aibench._cuda"]
    for owner, attr, value in _torch_patches(gpus):
        setattr(owner, attr, value)
    _reset_caches()
    return gpus
