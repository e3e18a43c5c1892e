"""Helpers of the CUDA tests that need no GPU (test_cuda_kernels.py, test_cuda_attention.py)."""

import importlib.util
import pathlib
import shutil
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


def built_cuda_module(needs=None):
    """aibench._cuda when it was built; a built module that fails to import is an error.
    Skips when the build lacks the attribute `needs` (it predates that kernel)."""
    try:
        spec = importlib.util.find_spec("aibench._cuda")
    except ImportError:
        spec = None
    if spec is None:
        pytest.skip("aibench._cuda is not built")
    from aibench import _cuda  # must import even without a driver (static cudart)

    if needs is not None and not hasattr(_cuda, needs):
        pytest.skip(f"this aibench._cuda build predates {needs}")
    return _cuda


def run_host_check(tmp_path, name):
    """Compiles and runs csrc/cuda/<name>.cpp, a host emulation of a kernel's index arithmetic."""
    source = ROOT / "csrc" / "cuda" / f"{name}.cpp"
    if not source.exists():
        pytest.skip("csrc/cuda not in this checkout")
    compiler = shutil.which("c++") or shutil.which("g++") or shutil.which("clang++")
    if compiler is None:
        pytest.skip("no C++ compiler")
    exe = tmp_path / name
    subprocess.run(
        [compiler, "-std=c++17", "-O2", f"-I{ROOT / 'csrc'}", str(source), "-o", str(exe)],
        check=True, capture_output=True, text=True,
    )
    result = subprocess.run([str(exe)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "all checks passed" in result.stdout
