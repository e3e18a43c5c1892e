"""MPI helpers shared by the tests that start their own ranks (interconnect, fleet)."""

from __future__ import annotations

import os

import pytest

from aibench import mpi

MPIEXEC = mpi.find_mpiexec()
needs_mpi = pytest.mark.skipif(MPIEXEC is None or mpi.mpi_unavailable_reason() is not None,
                               reason=f"no MPI to launch ranks with: {mpi.mpi_unavailable_reason()}")


def clean_env(**extra) -> dict:
    env = dict(os.environ)
    for k in list(env):  # never look launched: these tests start their own ranks
        if k.startswith(("PMI_", "PMIX_", "OMPI_COMM_WORLD", "MPI_LOCALNRANKS", "SLURM_", "HYDRA_")):
            del env[k]
    env.pop(mpi.CHILD_MARKER, None)
    env.setdefault("OMPI_ALLOW_RUN_AS_ROOT", "1")  # Open MPI in a container runs as root
    env.setdefault("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
    env.update(extra)
    return env


def mpiexec(ranks: int) -> list[str]:
    extra = ["--oversubscribe"] if mpi._is_open_mpi(MPIEXEC) else []
    return [MPIEXEC, "-n", str(ranks), *extra]


def mpiexec_env_flag(name: str, value: str) -> list[str]:
    """Set an environment variable for one program of an MPMD launch (`a : b`)."""
    return ["-x", f"{name}={value}"] if mpi._is_open_mpi(MPIEXEC) else ["-env", name, value]
