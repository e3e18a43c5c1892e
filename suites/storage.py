"""asv benchmarks of the storage suite: `asv run` measures the same cases as
`aibench run --suite storage` (aibench's reader and fio), under the same names aibench
records in results/. The test file is created in the current directory and deleted
afterwards."""

from aibench.asv_benchmarks import asv_class

Storage = asv_class("storage")
