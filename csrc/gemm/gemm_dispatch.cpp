// What the GEMM's ISA paths need, and the kernels of each.
#include "gemm/gemm.hpp"

namespace aibench::gemm {

// FMA on both paths: the micro-kernels are built with -mfma.
const IsaNeeds kIsaNeeds{"ISA path", kFma, kFma};

KernelSpec<float> fp32_kernel(Isa isa) {
  switch (isa) {
#if AIBENCH_X86
    case Isa::avx512: return avx512::fp32_kernel();
    case Isa::avx2: return avx2::fp32_kernel();
#endif
#if defined(__aarch64__)
    default: return neon::fp32_kernel();  // NEON is aarch64's baseline
#else
    default: return scalar::fp32_kernel();
#endif
  }
}

KernelSpec<double> fp64_kernel(Isa isa) {
  switch (isa) {
#if AIBENCH_X86
    case Isa::avx512: return avx512::fp64_kernel();
    case Isa::avx2: return avx2::fp64_kernel();
#endif
#if defined(__aarch64__)
    default: return neon::fp64_kernel();
#else
    default: return scalar::fp64_kernel();
#endif
  }
}

}  // namespace aibench::gemm

namespace aibench::gemm {

Int16PairKernelSpec int16_pair_kernel(Isa isa) {
  switch (isa) {
#if AIBENCH_X86
    case Isa::avx512:  // no AVX-512 int16 kernel: VPDPBUSD is the AVX-512 int8 path
    case Isa::avx2: return avx2::int16_pair_kernel();
#endif
    default: return scalar::int16_pair_kernel();
  }
}

}  // namespace aibench::gemm
