"""All-reduce of GPU buffers (the cuda target): NCCL through CuPy (`nccl`), and the MPI
library's Allreduce on CuPy arrays when the MPI is CUDA-aware (`mpi` on cuda).

Each rank uses GPU local_rank % device_count. Timing brackets each call with a stream
synchronisation, so a figure includes one launch and one sync per call (nccl-tests
times n launches with CUDA events instead; at small sizes this reads a few us higher).
"""

from __future__ import annotations

import ctypes
import importlib.util
import os

import numpy as np

from ... import mpi
from ...errors import SkipCase
from .common import FORMATS, AllreduceImpl, ExactInputs, poison


def gpu_unavailable_reason() -> str | None:
    if importlib.util.find_spec("cupy") is None:
        return "no GPU collectives: CuPy is not installed (pip install 'aibench[cuda]')"
    try:
        import cupy

        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as e:  # noqa: BLE001 - no driver, no device: the reason says which
        return f"no CUDA GPU: {type(e).__name__}: {e}"
    return None if count > 0 else "no CUDA GPU: the CUDA runtime reports 0 devices"


def nccl_unavailable_reason() -> str | None:
    reason = gpu_unavailable_reason()
    if reason is not None:
        return reason
    try:
        from cupy.cuda import nccl

        nccl.get_version()
    except Exception as e:  # noqa: BLE001
        return f"NCCL is not available through CuPy (cupy.cuda.nccl): {e}"
    return None


def mpi_cuda_support() -> tuple[bool | None, str]:
    """Whether the loaded MPI library is CUDA-aware: MPIX_Query_cuda_support() (MPICH and
    Open MPI export it), looked up in the libmpi this process has loaded. AIBENCH_MPI_CUDA
    = 1 / 0 overrides (for a library that cannot say)."""
    forced = os.environ.get("AIBENCH_MPI_CUDA")
    if forced in ("0", "1"):
        return forced == "1", f"AIBENCH_MPI_CUDA={forced}"
    paths: list[str] = []
    try:
        with open("/proc/self/maps", encoding="utf-8") as f:
            for line in f:
                path = line.split()[-1]
                if "libmpi" in os.path.basename(path) and ".so" in path and path not in paths:
                    paths.append(path)
    except OSError:
        pass
    for path in paths:
        try:
            fn = getattr(ctypes.CDLL(path), "MPIX_Query_cuda_support", None)
        except OSError:
            continue
        if fn is not None:
            fn.restype = ctypes.c_int
            value = fn()
            return bool(value), f"MPIX_Query_cuda_support() = {value} ({os.path.basename(path)})"
    return None, "the MPI library has no MPIX_Query_cuda_support, so its CUDA support is unknown (AIBENCH_MPI_CUDA=1 forces)"


class _GpuBuffers(AllreduceImpl):
    """Device buffers on GPU local_rank % device_count, filled and read back through host
    staging arrays."""

    target_kinds = ("cuda",)

    @classmethod
    def unavailable(cls, target) -> str | None:
        return mpi.mpi_unavailable_reason() or gpu_unavailable_reason()

    def __init__(self, comm, count: int, dtype: str, inplace: bool, session):
        import cupy

        self.session = session
        local_rank = session.local_rank
        self.cupy = cupy
        self.count, self.dtype, self.inplace = count, dtype, inplace
        self.device_index = local_rank % cupy.cuda.runtime.getDeviceCount()
        self.device = cupy.cuda.Device(self.device_index)
        self.device.use()
        storage = FORMATS[dtype].storage
        need = count * storage.itemsize * (1 if inplace else 2)
        free, _total = cupy.cuda.runtime.memGetInfo()
        if need > 0.9 * free:
            raise SkipCase(f"needs {need / 2**30:.1f} GiB of GPU memory, {free / 2**30:.1f} GiB free")
        self.result = cupy.empty(count, dtype=storage)
        self.send = self.result if inplace else cupy.empty(count, dtype=storage)
        self.stream = cupy.cuda.Stream(non_blocking=True)

    def fill(self, inputs: ExactInputs, rank: int) -> None:
        host = np.empty(self.count, dtype=FORMATS[self.dtype].storage)
        inputs.fill(host, rank)
        self.send.set(host, stream=self.stream)
        self.stream.synchronize()

    def prepare_check(self, inputs: ExactInputs, rank: int) -> None:
        if not self.inplace:
            host = np.empty(self.count, dtype=FORMATS[self.dtype].storage)
            poison(host, self.dtype)
            self.result.set(host, stream=self.stream)
        self.fill(inputs, rank)

    def result_host(self) -> np.ndarray:
        out = self.result.get(stream=self.stream)
        self.stream.synchronize()
        return out

    def gpu_detail(self) -> dict:
        props = self.cupy.cuda.runtime.getDeviceProperties(self.device_index)
        name = props.get("name", b"")
        return {"device": self.device_index, "gpu": name.decode() if isinstance(name, bytes) else str(name),
                "cupy": self.cupy.__version__}


class NcclAllreduce(_GpuBuffers):
    name = "nccl"
    description = "NCCL ncclAllReduce through CuPy (cupy.cuda.nccl)"

    @classmethod
    def unavailable(cls, target) -> str | None:
        return mpi.mpi_unavailable_reason() or nccl_unavailable_reason()

    def __init__(self, comm, count: int, dtype: str, inplace: bool, session):
        super().__init__(comm, count, dtype, inplace, session)
        from cupy.cuda import nccl

        self.nccl = nccl
        types = {"fp32": "NCCL_FLOAT32", "fp64": "NCCL_FLOAT64", "fp16": "NCCL_FLOAT16", "bf16": "NCCL_BFLOAT16"}
        self.nccl_type = getattr(nccl, types[dtype], None)
        if self.nccl_type is None:
            raise SkipCase(f"this CuPy's NCCL binding has no {types[dtype]}")
        uid = comm.bcast(nccl.get_unique_id() if comm.Get_rank() == 0 else None, root=0)
        self.communicator = nccl.NcclCommunicator(comm.Get_size(), uid, comm.Get_rank())

    def run(self) -> None:
        self.communicator.allReduce(self.send.data.ptr, self.result.data.ptr, self.count, self.nccl_type,
                                    self.nccl.NCCL_SUM, self.stream.ptr)
        self.stream.synchronize()

    def describe(self) -> dict:
        return {**self.gpu_detail(), "nccl_version": self.nccl.get_version(),
                "call": "ncclAllReduce on a non-blocking stream, then stream sync"}

    def close(self) -> None:
        self.communicator.destroy()
        self.result = self.send = None


class CudaMpiAllreduce(_GpuBuffers):
    name = "mpi"
    description = "the MPI library's MPI_Allreduce on CuPy buffers (a CUDA-aware MPI)"

    def __init__(self, comm, count: int, dtype: str, inplace: bool, session):
        from mpi4py import MPI

        from .host import mpi_type_and_op

        supported, self.how_detected = mpi_cuda_support()
        if not supported:
            raise SkipCase(f"the MPI library is not CUDA-aware: {self.how_detected}")
        super().__init__(comm, count, dtype, inplace, session)
        datatype, self._op, self.how = mpi_type_and_op(dtype)
        self._sbuf = MPI.IN_PLACE if inplace else [self.send, datatype]
        self._rbuf = [self.result, datatype]
        self._allreduce = comm.Allreduce

    def run(self) -> None:
        self._allreduce(self._sbuf, self._rbuf, self._op)  # buffers are ready: streams synced

    def describe(self) -> dict:
        return {**self.gpu_detail(), "cuda_aware": self.how_detected, "datatype_op": self.how,
                "call": "comm.Allreduce on CuPy arrays (CUDA-aware MPI)"}

    def close(self) -> None:
        self.result = self.send = None
