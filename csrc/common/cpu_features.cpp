#include "common/cpu_features.hpp"

#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <stdexcept>

namespace aibench {
namespace {

#if AIBENCH_X86
bool has_extra(unsigned extra) {
  if ((extra & kFma) && !__builtin_cpu_supports("fma")) return false;
  if ((extra & kF16c) && !__builtin_cpu_supports("f16c")) return false;
  return true;
}
#endif

// The size of cache `index` of cpu0 from sysfs ("32K", "1024K", "32M"), 0 if unreadable.
long sysfs_cache_bytes(int index) {
  std::ifstream f("/sys/devices/system/cpu/cpu0/cache/index" + std::to_string(index) + "/size");
  long value = 0;
  char unit = 0;
  if (!(f >> value)) return 0;
  f >> unit;
  return unit == 'K' ? value * 1024 : unit == 'M' ? value * 1024 * 1024 : value;
}

long cache_or(long reported, long sysfs, long fallback) {
  if (reported > 0) return reported;
  return sysfs > 0 ? sysfs : fallback;
}

bool cpu_supports_raw(Isa isa, const IsaNeeds& needs);

}  // namespace

const std::vector<std::string> kIsaLevels{"scalar", "avx2", "avx512", "avx512_vnni", "avx512_bf16"};

CacheSizes cache_sizes() {
  // Read once: sysconf runs CPUID, which traps to the hypervisor in a VM.
  // sysfs index 0 is L1d, 1 L1i, 2 L2, 3 L3 on x86 and most arm64 kernels.
  static const CacheSizes sizes{
      cache_or(sysconf(_SC_LEVEL1_DCACHE_SIZE), sysfs_cache_bytes(0), 32L << 10),
      cache_or(sysconf(_SC_LEVEL2_CACHE_SIZE), sysfs_cache_bytes(2), 256L << 10),
      cache_or(sysconf(_SC_LEVEL3_CACHE_SIZE), sysfs_cache_bytes(3), 4L << 20)};
  return sizes;
}

std::vector<std::string> cpu_isa_levels() {
  static const IsaNeeds fma{"ISA level", kFma, kFma};
  std::vector<std::string> levels{"scalar"};
  if (cpu_supports_raw(Isa::avx2, fma)) levels.push_back("avx2");
  if (cpu_supports_raw(Isa::avx512, fma)) levels.push_back("avx512");
  if (has_avx512_vnni() && cpu_supports_raw(Isa::avx512, fma)) levels.push_back("avx512_vnni");
  if (has_avx512_bf16() && has_avx512_vnni()) levels.push_back("avx512_bf16");
  return levels;
}

int isa_level_cap() {
  const char* env = std::getenv("AIBENCH_CPU_ISA");
  if (env == nullptr || *env == '\0') return -1;
  const std::string name(env);
  const std::vector<std::string> runnable = cpu_isa_levels();
  std::string choices;
  for (const std::string& level : runnable) choices += (choices.empty() ? "" : ", ") + level;
  for (size_t i = 0; i < kIsaLevels.size(); ++i) {
    if (kIsaLevels[i] != name) continue;
    if (i >= runnable.size() || runnable[i] != name) {
      throw std::invalid_argument("AIBENCH_CPU_ISA=" + name +
                                  ": this CPU cannot run that level (it can: " + choices + ")");
    }
    return static_cast<int>(i);
  }
  throw std::invalid_argument("AIBENCH_CPU_ISA=" + name + ": unknown level (levels: scalar, "
                              "avx2, avx512, avx512_vnni, avx512_bf16; this CPU: " + choices + ")");
}

bool cpu_supports(Isa isa, const IsaNeeds& needs) {
  const int cap = isa_level_cap();
  if (cap >= 0 && static_cast<int>(isa) > cap) return false;
  return cpu_supports_raw(isa, needs);
}

namespace {

bool cpu_supports_raw(Isa isa, const IsaNeeds& needs) {
  switch (isa) {
    case Isa::scalar:
      return true;
#if AIBENCH_X86
    case Isa::avx2:
      return __builtin_cpu_supports("avx2") && has_extra(needs.avx2_extra);
    case Isa::avx512:
      return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
             __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
             has_extra(needs.avx512_extra);
#else
    case Isa::avx2:
    case Isa::avx512:
      (void)needs;
      return false;  // not compiled into non-x86 builds
#endif
  }
  return false;
}

}  // namespace

std::vector<Isa> available_isas(const IsaNeeds& needs) {
  std::vector<Isa> isas;
  for (Isa isa : {Isa::scalar, Isa::avx2, Isa::avx512}) {
    if (cpu_supports(isa, needs)) isas.push_back(isa);
  }
  return isas;
}

Isa best_isa(const IsaNeeds& needs) { return available_isas(needs).back(); }

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::scalar: return "scalar";
    case Isa::avx2: return "avx2";
    case Isa::avx512: return "avx512";
  }
  return "unknown";
}

Isa parse_isa(const std::string& name, const IsaNeeds& needs) {
  if (name == "auto") return best_isa(needs);
  for (Isa isa : {Isa::scalar, Isa::avx2, Isa::avx512}) {
    if (name != isa_name(isa)) continue;
    if (!cpu_supports_raw(isa, needs)) {
      throw std::invalid_argument(std::string(needs.label) + " '" + name +
                                  "' is not supported by this CPU or build");
    }
    if (!cpu_supports(isa, needs)) {
      throw std::invalid_argument(std::string(needs.label) + " '" + name +
                                  "' is above the AIBENCH_CPU_ISA cap");
    }
    return isa;
  }
  throw std::invalid_argument("unknown ISA path '" + name +
                              "' (expected 'auto', 'scalar', 'avx2' or 'avx512')");
}

bool has_avx512_bf16() {
#if AIBENCH_X86
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
         __builtin_cpu_supports("avx512bf16") && __builtin_cpu_supports("fma");
#else
  return false;
#endif
}

bool has_avx512_vnni() {
#if AIBENCH_X86
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni");
#else
  return false;
#endif
}

}  // namespace aibench
