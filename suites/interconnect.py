"""asv benchmarks of the interconnect suite, one class per target kind: `asv run` measures
the same all-reduce cases as `aibench run --suite interconnect`, under the names aibench
records in results/. Each case launches its own MPI ranks (mpiexec -n $AIBENCH_RANKS,
default 2), since asv runs a benchmark in a single process."""

from aibench.asv_benchmarks import asv_class

AllreduceCpu = asv_class("interconnect", "AllreduceCpu")
AllreduceCuda = asv_class("interconnect", "AllreduceCuda")
