"""The MPI library's own all-reduce on host buffers: MPI_Allreduce through mpi4py's
upper-case (buffer) methods, out of place or with MPI.IN_PLACE."""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from ... import _core
from ...dtypes import decode, encode
from ...faults import fault_for
from ..base import RunContext
from .rma import ALGORITHMS, DESCRIPTIONS, SYNCS
from .common import CHECK_BYTES, FORMATS, AllreduceImpl, ExactInputs

_NATIVE_16 = {"bf16": "BFLOAT16_T", "fp16": "FLOAT16_T"}


@functools.lru_cache(maxsize=None)
def _user_sum(dtype: str):
    """An MPI op summing `dtype` bit patterns with aibench's kernel, for a library that
    has no such datatype (MPICH 5 has MPI_FLOAT16_T but not a bfloat16 type)."""
    from mpi4py import MPI

    def op(inbuf, inoutbuf, datatype):
        acc = np.frombuffer(inoutbuf, dtype=np.uint16)
        _core.reduce_sum(acc, np.frombuffer(inbuf, dtype=np.uint16), dtype)

    return MPI.Op.Create(op, commute=True)


@functools.lru_cache(maxsize=None)
def _native_16(dtype: str):
    """The library's own 16-bit float datatype if MPI_SUM really works on it (probed with
    MPI_Reduce_local: a library may define the handle and still reject it, as Open MPI
    4.1 does through mpi4py), else None."""
    from mpi4py import MPI

    datatype = getattr(MPI, _NATIVE_16[dtype], MPI.DATATYPE_NULL)
    if datatype == MPI.DATATYPE_NULL:
        return None
    try:
        if datatype.Get_size() != 2:
            return None
        a, b = encode(np.array([1.0, -2.0, 3.0]), dtype), encode(np.array([4.0, 5.0, -6.0]), dtype)
        MPI.SUM.Reduce_local([a, datatype], [b, datatype])
        ok = list(decode(b, dtype)) == [5.0, 3.0, -3.0]
    except Exception:  # noqa: BLE001 - MPI.Exception, or a handle the library does not know
        return None
    return datatype if ok else None


def mpi_type_and_op(dtype: str):
    """(datatype, op, how) for a sum of `dtype` by the MPI library."""
    from mpi4py import MPI

    if dtype == "fp32":
        return MPI.FLOAT, MPI.SUM, "MPI_FLOAT, MPI_SUM"
    if dtype == "fp64":
        return MPI.DOUBLE, MPI.SUM, "MPI_DOUBLE, MPI_SUM"
    native = _native_16(dtype)
    if native is not None:
        return native, MPI.SUM, f"MPI_{_NATIVE_16[dtype]}, MPI_SUM (the library's own reduction)"
    return (MPI.UINT16_T, _user_sum(dtype),
            f"the library has no usable {dtype} datatype: MPI_UINT16_T with a user-defined MPI op "
            "(aibench's reduce kernel); the communication is the library's")


class MpiHostAllreduce(AllreduceImpl):
    name = "mpi"
    description = "the MPI library's MPI_Allreduce (mpi4py buffer methods) on host buffers"

    @classmethod
    def host_bytes(cls, count: int, dtype: str, inplace: bool, nranks: int) -> int:
        """Plus the library's scratch: MPICH's allreduce algorithms allocate a count x
        extent temporary."""
        extra = count * FORMATS[dtype].itemsize if nranks > 1 else 0
        return super().host_bytes(count, dtype, inplace, nranks) + extra

    def __init__(self, params: dict[str, Any], ctx: RunContext):
        from mpi4py import MPI

        super().__init__(params, ctx)
        storage = FORMATS[self.dtype].storage
        self.result = np.empty(self.count, dtype=storage)
        self.send = self.result if self.inplace else np.empty(self.count, dtype=storage)
        datatype, self._op, self.how = mpi_type_and_op(self.dtype)
        self._sbuf = MPI.IN_PLACE if self.inplace else [self.send, datatype]
        self._rbuf = [self.result, datatype]
        self._allreduce = self.comm.Allreduce

    def run(self) -> None:
        self._allreduce(self._sbuf, self._rbuf, self._op)

    def describe(self) -> dict:
        return {"call": "comm.Allreduce(MPI.IN_PLACE, buf, op)" if self.inplace else "comm.Allreduce(sendbuf, recvbuf, op)",
                "datatype_op": self.how}

    def close(self) -> None:
        self.result = self.send = None  # type: ignore[assignment]


class RmaAllreduceImpl(AllreduceImpl):
    """aibench's one-sided all-reduce (rma.py): one subclass per algorithm and sync mode."""

    algorithm = ""
    sync = ""

    @classmethod
    def host_bytes(cls, count: int, dtype: str, inplace: bool, nranks: int) -> int:
        """The MPI window (rma.window_layout: counters, result, fold slot, two parities of
        scratch slots; 3n to 2n(lg p + 1) + n for n message bytes) and the send buffer."""
        from .rma import window_bytes

        itemsize = FORMATS[dtype].itemsize
        return window_bytes(cls.algorithm, count, itemsize, nranks) + (0 if inplace else count * itemsize) + CHECK_BYTES

    def __init__(self, params: dict[str, Any], ctx: RunContext):
        from .rma import RmaAllreduce

        super().__init__(params, ctx)
        self.impl = RmaAllreduce(self.comm, self.count, self.dtype, self.inplace, self.algorithm, self.sync,
                                 skip_reductions=fault_for(self.name) == "reduce")
        self.send, self.result = self.impl.send, self.impl.result

    def run(self) -> None:
        self.impl.run()

    def fill(self, inputs: ExactInputs, rank: int) -> None:
        inputs.fill(self.impl.send, rank)  # in place: local stores into the window
        self.impl.local_writes_done()

    def prepare_check(self, inputs: ExactInputs, rank: int) -> None:
        self.impl.poison()  # collective
        inputs.fill(self.impl.send, rank)
        self.impl.local_writes_done()

    def describe(self) -> dict:
        return self.impl.detail()

    def close(self) -> None:
        self.impl.close()


def _rma_impl(algorithm: str, sync: str) -> type[RmaAllreduceImpl]:
    how = "Fence per step" if sync == "fence" else "passive target: Lock_all, Put + Flush + atomic counters"
    name = f"rma-{algorithm}{'-fence' if sync == 'fence' else ''}"
    return type(f"Rma_{algorithm.replace('-', '_')}_{sync}", (RmaAllreduceImpl,), {
        "name": name, "algorithm": algorithm, "sync": sync,
        "description": f"own one-sided all-reduce, {DESCRIPTIONS[algorithm]}; {how}; SIMD local sum"})


# Every RMA algorithm of rma.py in both sync modes: rma-ring, rma-ring-fence, ...
RMA_IMPLS = tuple(_rma_impl(alg, sync) for alg in ALGORITHMS for sync in SYNCS)
