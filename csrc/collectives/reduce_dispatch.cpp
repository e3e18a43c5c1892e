// What the reduce ISA paths need, and the kernel of each (dtype, ISA).
#include <stdexcept>

#include "collectives/reduce.hpp"

namespace aibench::collectives {

// The AVX2 path converts fp16 with F16C; the AVX-512 one needs only AVX-512F for that.
const IsaNeeds kIsaNeeds{"reduce ISA path", kF16c, kNoExtra};

namespace {

SumKernels kernels_of(Isa isa) {
  switch (isa) {
#if AIBENCH_X86
    case Isa::avx512: return avx512::sum_kernels();
    case Isa::avx2: return avx2::sum_kernels();
#endif
    default: return scalar::sum_kernels();
  }
}

}  // namespace

Dtype parse_dtype(const std::string& name) {
  if (name == "fp32") return Dtype::fp32;
  if (name == "fp64") return Dtype::fp64;
  if (name == "bf16") return Dtype::bf16;
  if (name == "fp16") return Dtype::fp16;
  throw std::invalid_argument("unknown reduce dtype '" + name + "' (expected fp32, fp64, bf16 or fp16)");
}

int dtype_size(Dtype dtype) {
  switch (dtype) {
    case Dtype::fp32: return 4;
    case Dtype::fp64: return 8;
    case Dtype::bf16:
    case Dtype::fp16: return 2;
  }
  return 0;
}

SumFn sum_kernel(Isa isa, Dtype dtype) {
  const SumKernels k = kernels_of(isa);
  switch (dtype) {
    case Dtype::fp32: return k.fp32;
    case Dtype::fp64: return k.fp64;
    case Dtype::bf16: return k.bf16;
    case Dtype::fp16: return k.fp16;
  }
  return k.fp32;
}

}  // namespace aibench::collectives
