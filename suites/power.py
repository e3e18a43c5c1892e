"""asv benchmarks of the power suite: energy per FLOP of GEMM at its peak shapes."""

from aibench.asv_benchmarks import asv_class

PowerCpu = asv_class("power", "PowerCpu")
PowerCuda = asv_class("power", "PowerCuda")
