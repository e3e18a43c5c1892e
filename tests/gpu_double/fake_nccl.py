"""A fake `cupy.cuda.nccl` on the simulated GPU, as CuPy binds NCCL (docs.cupy.dev,
"NCCL" under Low-level CUDA support; nccl.h for the enums): get_version(),
get_unique_id(), NcclCommunicator(ndev, commId, rank) with allReduce(sendbuf, recvbuf,
count, datatype, op, stream) taking device addresses, and destroy(). ncclDataType_t:
ncclFloat16 6, ncclFloat32 7, ncclFloat64 8, ncclBfloat16 9; ncclRedOp_t: ncclSum 0.

The ranks of a communicator are the processes of MPI_COMM_WORLD (the double's transport:
each allReduce is an MPI allgather of the send buffers, summed in rank order in float64
and rounded once, so small-integer inputs reduce exactly, as NCCL's do). One kernel of
the device's told all-reduce time per call.
"""

from __future__ import annotations

import os

import numpy as np

from .device import SimulatedGpus

NCCL_FLOAT16, NCCL_FLOAT32, NCCL_FLOAT64, NCCL_BFLOAT16 = 6, 7, 8, 9
NCCL_SUM = 0
_STORAGE = {NCCL_FLOAT16: np.float16, NCCL_FLOAT32: np.float32, NCCL_FLOAT64: np.float64, NCCL_BFLOAT16: np.uint16}


class NcclError(RuntimeError):
    pass


def build(gpus: SimulatedGpus):
    from .fake_cupy import _module

    m = _module("cupy.cuda.nccl")
    m.NcclError = NcclError
    m.NCCL_FLOAT16, m.NCCL_FLOAT32, m.NCCL_FLOAT64, m.NCCL_BFLOAT16 = (NCCL_FLOAT16, NCCL_FLOAT32, NCCL_FLOAT64,
                                                                       NCCL_BFLOAT16)
    m.NCCL_SUM = NCCL_SUM
    m.get_version = lambda: gpus.nccl_version
    m.get_unique_id = lambda: tuple(int(b) for b in os.urandom(128))

    class NcclCommunicator:
        def __init__(self, ndev, commId, rank):
            from mpi4py import MPI

            self.world = MPI.COMM_WORLD
            if ndev != self.world.Get_size() or rank != self.world.Get_rank():
                raise NcclError("ncclInvalidArgument: the double's communicators span MPI_COMM_WORLD")
            if len(commId) != 128:
                raise NcclError("ncclInvalidArgument: commId is not an ncclUniqueId")
            self.ndev, self.rank, self.alive = ndev, rank, True

        def allReduce(self, sendbuf, recvbuf, count, datatype, op, stream):  # noqa: N802 - CuPy's name
            from aibench.dtypes import bf16_bits, decode

            if not self.alive:
                raise NcclError("ncclInvalidUsage: the communicator was destroyed")
            if op != NCCL_SUM or datatype not in _STORAGE:
                raise NcclError("ncclInvalidArgument: the double reduces fp16/bf16/fp32/fp64 sums")
            storage = _STORAGE[datatype]
            send = gpus.view(sendbuf, count, storage).copy()
            parts = self.world.allgather(send) if self.ndev > 1 else [send]
            fmt = "bf16" if datatype == NCCL_BFLOAT16 else None
            total = sum((decode(p, fmt) if fmt else p.astype(np.float64)) for p in parts)
            with np.errstate(over="ignore"):  # repeated in-place sums overflow to inf, as on a GPU
                gpus.view(recvbuf, count, storage)[...] = bf16_bits(total.astype(np.float32)) if fmt else total
            gpus.wrote()
            gpus.kernel("allreduce", f"ncclAllReduce x{count}")

        def destroy(self):
            self.alive = False

    m.NcclCommunicator = NcclCommunicator
    return m
