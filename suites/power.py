"""asv benchmarks of the power suite: energy per FLOP of GEMM at its peak shapes."""

from aibench.asv_benchmarks import asv_class

Power = asv_class("power")
