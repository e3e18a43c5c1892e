"""All-reduce of GPU buffers (the cuda target): NCCL through CuPy (`nccl`), and the MPI
library's Allreduce on CuPy arrays when the MPI is CUDA-aware (`mpi` on cuda).

Each rank uses GPU local_rank % device_count. NCCL in the pipelined timing (the default)
is timed as nccl-tests times it: CUDA events around a loop of ncclAllReduce calls enqueued
back to back on one stream, with no synchronisation between them and one at the end; the
figure is the slowest rank's time per call. In the barrier timing (OSU) and for the MPI
impl (a blocking call), the suite's MPI.Wtime timing applies (time_collective).
"""

from __future__ import annotations

import ctypes
import importlib.util
import os

import numpy as np

from ... import mpi
from ...dtypes import poison
from ...errors import SkipCase
from ...fit import fits
from ...results import Samples
from ..base import RunContext
from .common import FORMATS, AllreduceImpl, ExactInputs

# Timed loops (samples) of a pipelined NCCL measurement; the IMB iteration count is
# split among them.
_NCCL_LOOPS = 5


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

    def __init__(self, params: dict[str, Any], ctx: RunContext):
        import cupy

        super().__init__(params, ctx)
        count, dtype, inplace = self.count, self.dtype, self.inplace
        self.cupy = cupy
        gpus = cupy.cuda.runtime.getDeviceCount()
        self.device_index = self.session.local_rank % gpus
        self.shares_gpu = self.session.local_size > gpus  # another rank of this node uses this GPU too
        self.device = cupy.cuda.Device(self.device_index)
        self.device.use()
        storage = FORMATS[dtype].storage
        free, _total = cupy.cuda.runtime.memGetInfo()
        reason = fits(count * storage.itemsize * (1 if inplace else 2), free, "the all-reduce's GPU buffers",
                      share=0.9, of="of GPU memory free")
        if reason:
            raise SkipCase(reason)
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
        from .bounds import gpu_link_rate

        props = self.cupy.cuda.runtime.getDeviceProperties(self.device_index)
        name = props.get("name", b"")
        # What bounds busbw (bounds.gpu_bound), or why nothing does.
        links = ("no independent bound: ranks of this node share the GPU (their bytes do not cross its links)"
                 if self.shares_gpu else gpu_link_rate(self.device_index)["source"])
        return {"device": self.device_index, "gpu": name.decode() if isinstance(name, bytes) else str(name),
                "cupy": self.cupy.__version__, "links": links}


class NcclAllreduce(_GpuBuffers):
    name = "nccl"
    description = "NCCL ncclAllReduce through CuPy (cupy.cuda.nccl)"

    @classmethod
    def unavailable(cls, target) -> str | None:
        return mpi.mpi_unavailable_reason() or nccl_unavailable_reason()

    def __init__(self, params: dict[str, Any], ctx: RunContext):
        super().__init__(params, ctx)
        from cupy.cuda import nccl

        comm, dtype = self.comm, self.dtype

        self.nccl = nccl
        types = {"fp32": "NCCL_FLOAT32", "fp64": "NCCL_FLOAT64", "fp16": "NCCL_FLOAT16", "bf16": "NCCL_BFLOAT16"}
        self.nccl_type = getattr(nccl, types[dtype], None)
        if self.nccl_type is None:
            raise SkipCase(f"this CuPy's NCCL binding has no {types[dtype]}")
        uid = comm.bcast(nccl.get_unique_id() if comm.Get_rank() == 0 else None, root=0)
        self.communicator = nccl.NcclCommunicator(comm.Get_size(), uid, comm.Get_rank())

    def launch(self) -> None:
        """Enqueue one ncclAllReduce on the stream; no wait."""
        self.communicator.allReduce(self.send.data.ptr, self.result.data.ptr, self.count, self.nccl_type,
                                    self.nccl.NCCL_SUM, self.stream.ptr)

    def run(self) -> None:
        self.launch()
        self.stream.synchronize()

    def measure(self, policy) -> Samples:
        """Pipelined timing (the default) as nccl-tests: a warm-up, then _NCCL_LOOPS timed
        loops, each CUDA events around `per_loop` calls enqueued without synchronisation
        and one sync at the end. The iteration count is IMB's (min(1000, 40 MiB / size)),
        cut to the budget from the warm-up's time per call. A sample is one loop's time
        per call on the slowest rank. The barrier timing (OSU) takes the suite's way."""
        if getattr(self, "timing_style", "pipelined") != "pipelined":
            return super().measure(policy)
        from mpi4py import MPI

        from .measure import CollectiveTiming, max_iterations, min_iterations, planned_iterations

        session, comm, cupy = self.session, self.session.comm, self.cupy
        self.inputs = ExactInputs(self.dtype, session.size)
        self.fill(self.inputs, session.rank)  # never zeros: the same small integers as the check
        budget = policy.budget_s
        iters = planned_iterations(self.count * FORMATS[self.dtype].itemsize, min_iterations(budget),
                                   max_iterations(budget))
        warmup = max(2, iters // 10)

        def timed_loop(calls: int) -> float:
            start, stop = cupy.cuda.Event(), cupy.cuda.Event()
            start.record(self.stream)
            for _ in range(calls):
                self.launch()
            stop.record(self.stream)
            stop.synchronize()
            return cupy.cuda.get_elapsed_time(start, stop) / 1e3

        comm.Barrier()
        per_call = comm.allreduce(timed_loop(warmup) / warmup, op=MPI.MAX)  # the same count everywhere
        stopped_by = "iterations"
        if per_call * iters > budget:
            iters = max(_NCCL_LOOPS, int(budget / max(per_call, 1e-9)))
            stopped_by = "time_cap"
        per_loop = max(1, iters // _NCCL_LOOPS)
        mine = np.empty(_NCCL_LOOPS)
        for i in range(_NCCL_LOOPS):
            comm.Barrier()  # the loops start together, as nccl-tests' do
            mine[i] = timed_loop(per_loop) / per_loop
        slowest = np.empty_like(mine)
        comm.Allreduce(mine, slowest, op=MPI.MAX)
        avgs = comm.gather(float(np.mean(mine)), root=0)
        self.timing = CollectiveTiming(iters=per_loop * _NCCL_LOOPS, warmup=warmup, stopped_by=stopped_by,
                                       samples=slowest, rank_avg=list(avgs) if avgs else [])
        record = self.timing.samples_record()
        record.number = per_loop
        record.what = "seconds per call of the slowest rank, over one timed loop (CUDA events, no sync between calls)"
        return record

    def describe(self) -> dict:
        how = ("CUDA events around back-to-back ncclAllReduce calls on a non-blocking stream, one sync at the end "
               "(nccl-tests)" if getattr(self, "timing_style", "pipelined") == "pipelined" else
               "ncclAllReduce on a non-blocking stream, then stream sync, each call timed (MPI.Wtime)")
        return {**self.gpu_detail(), "nccl_version": self.nccl.get_version(), "call": how}

    def close(self) -> None:
        self.communicator.destroy()
        self.result = self.send = None


class CudaMpiAllreduce(_GpuBuffers):
    name = "mpi"
    description = "the MPI library's MPI_Allreduce on CuPy buffers (a CUDA-aware MPI)"

    def __init__(self, params: dict[str, Any], ctx: RunContext):
        from mpi4py import MPI

        from .host import mpi_type_and_op

        supported, self.how_detected = mpi_cuda_support()
        if not supported:
            raise SkipCase(f"the MPI library is not CUDA-aware: {self.how_detected}")
        super().__init__(params, ctx)
        datatype, self._op, self.how = mpi_type_and_op(self.dtype)
        self._sbuf = MPI.IN_PLACE if self.inplace else [self.send, datatype]
        self._rbuf = [self.result, datatype]
        self._allreduce = self.comm.Allreduce

    def run(self) -> None:
        self._allreduce(self._sbuf, self._rbuf, self._op)  # buffers are ready: streams synced

    def describe(self) -> dict:
        return {**self.gpu_detail(), "cuda_aware": self.how_detected, "datatype_op": self.how,
                "call": "comm.Allreduce on CuPy arrays (CUDA-aware MPI)"}

    def close(self) -> None:
        self.result = self.send = None
