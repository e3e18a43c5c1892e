#include "common/cpu_features.hpp"

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

}  // namespace

bool cpu_supports(Isa isa, const IsaNeeds& needs) {
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
    if (!cpu_supports(isa, needs)) {
      throw std::invalid_argument(std::string(needs.label) + " '" + name +
                                  "' is not supported by this CPU or build");
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
