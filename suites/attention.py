"""asv benchmarks of the attention suite, one class per target kind: `asv run` measures
the same cases as `aibench run --suite attention`, under the names aibench records."""

from aibench.asv_benchmarks import asv_class

AttentionCpu = asv_class("attention", "AttentionCpu")
AttentionCuda = asv_class("attention", "AttentionCuda")
AttentionJax = asv_class("attention", "AttentionJax")
