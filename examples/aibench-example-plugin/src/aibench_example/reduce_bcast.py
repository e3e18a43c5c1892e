"""`reduce-bcast`: an all-reduce as MPI_Reduce to rank 0 then MPI_Bcast, the textbook
two-step algorithm (latency 2 log p, bandwidth 2n at the root). One class: aibench's
AllreduceImpl times it like every other all-reduce and checks it exactly."""

from __future__ import annotations

import numpy as np

from aibench.suites.interconnect.common import FORMATS, AllreduceImpl
from aibench.suites.interconnect.host import mpi_type_and_op


class ReduceBcastAllreduce(AllreduceImpl):
    name = "reduce-bcast"
    description = "MPI_Reduce to rank 0, then MPI_Bcast (the library's two collectives)"

    def __init__(self, params, ctx):
        from mpi4py import MPI

        super().__init__(params, ctx)  # session, comm, count, dtype, inplace of the case
        storage = FORMATS[self.dtype].storage
        self.result = np.empty(self.count, dtype=storage)
        self.send = self.result if self.inplace else np.empty(self.count, dtype=storage)
        self.datatype, self.op, self.how = mpi_type_and_op(self.dtype)
        root = self.comm.Get_rank() == 0
        # In place, rank 0 reduces into its own buffer; the others only send theirs.
        self._sbuf = MPI.IN_PLACE if self.inplace and root else [self.send, self.datatype]
        self._rbuf = [self.result, self.datatype] if root else None

    def run(self) -> None:
        self.comm.Reduce(self._sbuf, self._rbuf, self.op, root=0)
        self.comm.Bcast([self.result, self.datatype], root=0)

    def describe(self) -> dict:
        return {"call": "comm.Reduce(..., root=0); comm.Bcast(result, root=0)", "datatype_op": self.how}

    def close(self) -> None:
        self.result = self.send = None
