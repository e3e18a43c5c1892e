// Run-time CPU feature detection, shared by every component with per-ISA kernels.
// cpu_features.cpp is compiled without ISA flags. The per-ISA translation units may include
// this header: it only declares (no inline functions, see the ODR rule in gemm/gemm.hpp).
#pragma once

#include <string>
#include <vector>

namespace aibench {

// The fp32/fp64-style ISA paths, slowest first.
enum class Isa { scalar, avx2, avx512 };

// Features an ISA path needs on top of its base set (AVX2; AVX-512 F/DQ/BW/VL): the
// components' kernels differ (the GEMM and attention use FMA, the reduce F16C).
enum CpuExtra : unsigned { kNoExtra = 0, kFma = 1u << 0, kF16c = 1u << 1 };

// What one component's ISA paths need. `label` starts the "not supported" error,
// e.g. "reduce ISA path" (so the caller can tell whose path was refused).
struct IsaNeeds {
  const char* label;
  unsigned avx2_extra;
  unsigned avx512_extra;
};

// __builtin_cpu_supports reads CPUID and also checks that the OS saves the wider
// registers (XGETBV), so a true answer means the instructions really can run. Always
// false for avx2/avx512 in non-x86 builds.
bool cpu_supports(Isa isa, const IsaNeeds& needs);
// ISA paths this CPU (and build) can run, slowest first.
std::vector<Isa> available_isas(const IsaNeeds& needs);
Isa best_isa(const IsaNeeds& needs);
const char* isa_name(Isa isa);
// "scalar", "avx2", "avx512" or "auto" (= best_isa()). Throws std::invalid_argument for an
// unknown name or an ISA this CPU (or this build) cannot run.
Isa parse_isa(const std::string& name, const IsaNeeds& needs);

// AVX-512 F/BW/VL/DQ + BF16 + FMA: the VDPBF16PS kernels (GEMM and attention).
bool has_avx512_bf16();
// AVX-512 F/BW/VL + VNNI: the VPDPBUSD kernels.
bool has_avx512_vnni();

}  // namespace aibench
