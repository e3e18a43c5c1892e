// Which ISA paths this CPU can run, and the kernels of each.
#include <stdexcept>

#include "gemm/gemm.hpp"

namespace aibench::gemm {
namespace {

// __builtin_cpu_supports reads CPUID and also checks that the OS saves the wider
// registers (XGETBV), so a true answer means the instructions really can run.
bool cpu_supports(Isa isa) {
  switch (isa) {
    case Isa::scalar:
      return true;
#if AIBENCH_X86
    case Isa::avx2:
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case Isa::avx512:
      return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
             __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
             __builtin_cpu_supports("fma");
#else
    case Isa::avx2:
    case Isa::avx512:
      return false;  // not compiled into non-x86 builds
#endif
  }
  return false;
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
      throw std::invalid_argument("ISA path '" + name + "' is not supported by this CPU or build");
    }
    return isa;
  }
  throw std::invalid_argument("unknown ISA path '" + name +
                              "' (expected 'auto', 'scalar', 'avx2' or 'avx512')");
}

KernelSpec<float> fp32_kernel(Isa isa) {
  switch (isa) {
#if AIBENCH_X86
    case Isa::avx512: return avx512::fp32_kernel();
    case Isa::avx2: return avx2::fp32_kernel();
#endif
    default: return scalar::fp32_kernel();
  }
}

KernelSpec<double> fp64_kernel(Isa isa) {
  switch (isa) {
#if AIBENCH_X86
    case Isa::avx512: return avx512::fp64_kernel();
    case Isa::avx2: return avx2::fp64_kernel();
#endif
    default: return scalar::fp64_kernel();
  }
}

}  // namespace aibench::gemm
