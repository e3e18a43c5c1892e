"""asv benchmarks of the attention suite: `asv run` measures the same cases as
`aibench run --suite attention`, under the same names aibench records in results/."""

from aibench.asv_benchmarks import asv_class

Attention = asv_class("attention")
