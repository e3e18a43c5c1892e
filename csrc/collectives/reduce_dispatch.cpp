// Which reduce ISA paths this CPU can run, and the kernel of each (dtype, ISA).
#include <stdexcept>

#include "collectives/reduce.hpp"

namespace aibench::collectives {
namespace {

// __builtin_cpu_supports also checks that the OS saves the wider registers (XGETBV).
bool cpu_supports(Isa isa) {
  switch (isa) {
    case Isa::scalar:
      return true;
#if AIBENCH_X86
    case Isa::avx2:
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("f16c");
    case Isa::avx512:
      return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
             __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
#else
    case Isa::avx2:
    case Isa::avx512:
      return false;
#endif
  }
  return false;
}

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

std::vector<Isa> available_isas() {
  std::vector<Isa> isas;
  for (Isa isa : {Isa::scalar, Isa::avx2, Isa::avx512}) {
    if (cpu_supports(isa)) isas.push_back(isa);
  }
  return isas;
}

Isa best_isa() { return available_isas().back(); }

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::scalar: return "scalar";
    case Isa::avx2: return "avx2";
    case Isa::avx512: return "avx512";
  }
  return "unknown";
}

Isa parse_isa(const std::string& name) {
  if (name == "auto") return best_isa();
  for (Isa isa : {Isa::scalar, Isa::avx2, Isa::avx512}) {
    if (name != isa_name(isa)) continue;
    if (!cpu_supports(isa)) {
      throw std::invalid_argument("reduce ISA path '" + name + "' is not supported by this CPU or build");
    }
    return isa;
  }
  throw std::invalid_argument("unknown ISA path '" + name + "' (expected 'auto', 'scalar', 'avx2' or 'avx512')");
}

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
