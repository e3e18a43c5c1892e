"""asv benchmarks of the gemm suite, one class per target kind: `asv run` measures the
same cases as `aibench run --suite gemm`, under the names aibench records in results/."""

from aibench.asv_benchmarks import asv_class

GemmCpu = asv_class("gemm", "GemmCpu")
GemmCuda = asv_class("gemm", "GemmCuda")
GemmJax = asv_class("gemm", "GemmJax")
