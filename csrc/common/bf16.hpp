// bf16 <-> fp32 on bit patterns, shared by the drivers (gemm_lowp.cpp, gemm_driver.cpp,
// attention_driver.cpp). Only for files compiled without ISA flags: these are inline
// (ODR rule of gemm/gemm.hpp).
#pragma once

#include <cstdint>
#include <cstring>

namespace aibench {

// The fp32 value of bf16 bits (exact).
inline float bf16_to_float(uint16_t bits) {
  const uint32_t u = static_cast<uint32_t>(bits) << 16;
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

// fp32 -> bf16 bits, rounded to nearest even as VCVTNEPS2BF16 does it, so that every path
// (the instruction on full tiles, this on edges and on the widening paths) rounds alike:
// NaN -> quiet NaN, denormals -> signed zero (the instruction treats denormal inputs as zero).
inline uint16_t float_to_bf16_rne(float x) {
  uint32_t u;
  std::memcpy(&u, &x, sizeof u);
  if ((u & 0x7F800000u) == 0x7F800000u && (u & 0x007FFFFFu) != 0) {
    return static_cast<uint16_t>((u >> 16) | 0x0040u);
  }
  if ((u & 0x7F800000u) == 0) return static_cast<uint16_t>((u >> 16) & 0x8000u);
  u += 0x7FFFu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}

}  // namespace aibench
