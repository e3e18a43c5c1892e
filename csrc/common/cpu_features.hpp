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

// Data cache sizes in bytes as this CPU reports them (sysconf, which reads CPUID; sysfs
// where that gives 0), with a conservative default for a level neither reports: L1d
// 32 KiB, L2 256 KiB, L3 4 MiB. l3 is the share one core's cluster sees (one CCX on AMD).
struct CacheSizes {
  long l1d, l2, l3;
};
CacheSizes cache_sizes();

// AIBENCH_CPU_ISA: a cap on the own kernels' instruction level, for tests (run the lower
// paths on a CPU that has higher ones) and for like-for-like comparisons between nodes.
// Levels, lowest first: "scalar", "avx2", "avx512", "avx512_vnni" (+ VPDPBUSD int8),
// "avx512_bf16" (+ VDPBF16PS bf16; every CPU with it has VNNI too). Unset or empty: no
// cap. Read on every call (tests change it in-process).
extern const std::vector<std::string> kIsaLevels;
// Index in kIsaLevels of the cap, or -1 when unset. Throws std::invalid_argument for an
// unknown level or one this CPU (or build) cannot run, naming the levels it can.
int isa_level_cap();
// Levels of kIsaLevels this CPU (and build) can run, lowest first (ignoring the cap).
std::vector<std::string> cpu_isa_levels();

// AVX-512 F/BW/VL/DQ + BF16 + FMA: the VDPBF16PS kernels (GEMM and attention).
bool has_avx512_bf16();
// AVX-512 F/BW/VL + VNNI: the VPDPBUSD kernels.
bool has_avx512_vnni();

}  // namespace aibench
