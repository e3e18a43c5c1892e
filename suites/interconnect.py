"""asv benchmarks of the interconnect suite: `asv run` measures the same all-reduce cases
as `aibench run --suite interconnect`, under the same names aibench records in results/.
Each case launches its own MPI ranks (mpiexec -n $AIBENCH_RANKS, default 2), since asv
runs benchmarks in a single process."""

from aibench.asv_benchmarks import asv_class

Allreduce = asv_class("interconnect")
