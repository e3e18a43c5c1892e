"""asv benchmarks of the gemm suite: `asv run` measures the same cases as
`aibench run --suite gemm`, under the same names aibench records in results/."""

from aibench.asv_benchmarks import asv_class

Gemm = asv_class("gemm")
