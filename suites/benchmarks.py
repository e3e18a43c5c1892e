"""asv's benchmark_dir (asv.conf.json): every asv benchmark class of every registered
suite, built-in or from another package, generated from the suites' AsvSpecs
(aibench.asv_benchmarks). `asv run` measures the same cases as `aibench run`, under the
names aibench records in results/ (`gemm.GemmCpu.track_tflops`: each benchmark carries
its name). Interconnect cases launch their own MPI ranks (mpiexec -n $AIBENCH_RANKS,
default 2), since asv runs a benchmark in a single process; storage cases create their
test file in the current directory and delete it afterwards; objectstore cases read from
the embedded local S3 endpoint."""

from aibench.asv_benchmarks import asv_classes

globals().update(asv_classes())
