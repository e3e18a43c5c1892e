"""`aibench` with the device double in place, for processes a test starts itself (the
MPI ranks of an interconnect run): mpiexec -n 2 python tests/gpu_double/launch.py run ...

What the simulated device is told comes from this launcher's own environment (read by
the test double only, never by aibench): GPU_DOUBLE_KERNEL_SECONDS="allreduce=1e-4,..."
and GPU_DOUBLE_GPUS (boards per node, default 1). Coverage is measured in the ranks
when COVERAGE_PROCESS_START names a config (coverage.process_startup)."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # tests/

try:
    import coverage

    coverage.process_startup()
except ImportError:
    pass

from gpu_double import GpuSpec, SimulatedGpus, install_for_process  # noqa: E402


def main() -> int:
    boards = int(os.environ.get("GPU_DOUBLE_GPUS", "1"))
    gpus = install_for_process(SimulatedGpus([GpuSpec(pci_bus_id=f"00000000:{0x19 + i:02x}:00.0")
                                              for i in range(boards)]))
    for item in filter(None, os.environ.get("GPU_DOUBLE_KERNEL_SECONDS", "").split(",")):
        kind, _, seconds = item.partition("=")
        gpus.kernel_seconds[kind] = float(seconds)
    from aibench.cli import main as aibench_main

    return aibench_main(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
