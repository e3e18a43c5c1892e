"""`aibench` with the device double in place, for processes a test starts itself (the
MPI ranks of an interconnect run, a fleet, preflight):
mpiexec -n 2 python tests/gpu_double/launch.py run ...

What the simulated device is told comes from this launcher's own environment (read by
the test double only, never by aibench):
  GPU_DOUBLE_GPUS                    boards per node (default 1)
  GPU_DOUBLE_KERNEL_SECONDS          "allreduce=1e-4,gemm=1e-3": seconds per kernel of a kind
  GPU_DOUBLE_DEVICE_KERNEL_SECONDS   "1:gemm=2e-3": the same for one board (a slower GPU)
  GPU_DOUBLE_HOST_PER_RANK=1         each rank is a node of its own, host name node<rank>
                                     (socket.gethostname, which aibench's MPI hello reads)
  GPU_DOUBLE_RANK_SETTINGS           "1:vbios=96.00.AF.00.02;2:driver_version=575.51.03":
                                     a board field (GpuSpec, on every board) or a node
                                     field (SimulatedGpus: driver_version, nccl_version)
                                     that differs on one rank (drift between nodes)
Coverage is measured in the ranks when COVERAGE_PROCESS_START names a config
(coverage.process_startup)."""

import os
import socket
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # tests/

try:
    import coverage

    coverage.process_startup()
except ImportError:
    pass

from gpu_double import SimulatedGpus, boards, install_for_process  # noqa: E402


def launched_rank() -> int:
    """This process's rank in MPI_COMM_WORLD, from the launcher's environment (MPICH's
    Hydra sets PMI_RANK, Open MPI OMPI_COMM_WORLD_RANK), read before aibench starts MPI."""
    return int(os.environ.get("PMI_RANK") or os.environ.get("OMPI_COMM_WORLD_RANK") or 0)


def kernel_times(text: str) -> dict[str, float]:
    """"gemm=1e-3,flush=0" -> {"gemm": 0.001, "flush": 0.0}"""
    return {kind: float(seconds) for kind, _, seconds in (item.partition("=") for item in text.split(",") if item)}


def main() -> int:
    rank = launched_rank()
    gpus = install_for_process(SimulatedGpus(boards(int(os.environ.get("GPU_DOUBLE_GPUS", "1")))))
    gpus.kernel_seconds.update(kernel_times(os.environ.get("GPU_DOUBLE_KERNEL_SECONDS", "")))
    for item in filter(None, os.environ.get("GPU_DOUBLE_DEVICE_KERNEL_SECONDS", "").split(";")):
        device, _, times = item.partition(":")
        gpus.device_kernel_seconds[int(device)] = kernel_times(times)
    for item in filter(None, os.environ.get("GPU_DOUBLE_RANK_SETTINGS", "").split(";")):
        on_rank, _, setting = item.partition(":")
        field, _, value = setting.partition("=")
        if int(on_rank) != rank:
            continue
        if hasattr(gpus, field):
            setattr(gpus, field, type(getattr(gpus, field))(value))
        else:
            for spec in gpus.specs:
                setattr(spec, field, type(getattr(spec, field))(value))
    if os.environ.get("GPU_DOUBLE_HOST_PER_RANK") == "1":
        socket.gethostname = lambda: f"node{rank}"
    from aibench.cli import main as aibench_main

    return aibench_main(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
