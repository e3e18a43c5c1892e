// Scalar element operations shared by every ISA path (the tails of the vector loops and
// the whole scalar path). Internal linkage on purpose: see the ODR rule in reduce.hpp.
#pragma once

#include <cstdint>
#include <cstring>

namespace aibench::collectives {
namespace {

inline float bits_to_float(uint32_t u) {
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

inline uint32_t float_to_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
}

inline float bf16_to_float(uint16_t h) { return bits_to_float(static_cast<uint32_t>(h) << 16); }

// Round to nearest even; NaN stays a (quiet) NaN.
inline uint16_t float_to_bf16(float f) {
  const uint32_t x = float_to_bits(f);
  if ((x & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((x >> 16) | 0x40u);
  return static_cast<uint16_t>((x + 0x7fffu + ((x >> 16) & 1u)) >> 16);
}

// IEEE binary16 -> binary32, exact (subnormals included); NaN comes out quiet as in F16C.
inline float fp16_to_float(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1fu;
  uint32_t mant = h & 0x3ffu;
  if (exp == 0x1f) {
    return bits_to_float(sign | 0x7f800000u | (mant << 13) | (mant ? 0x00400000u : 0u));
  }
  if (exp == 0) {
    if (mant == 0) return bits_to_float(sign);
    int e = -1;
    do {
      ++e;
      mant <<= 1;
    } while ((mant & 0x400u) == 0);
    mant &= 0x3ffu;
    return bits_to_float(sign | (static_cast<uint32_t>(112 - e) << 23) | (mant << 13));
  }
  return bits_to_float(sign | ((exp + 112u) << 23) | (mant << 13));
}

// binary32 -> binary16, round to nearest even (F. Giesen's float_to_half_fast3_rtne). The
// subnormal branch relies on one float addition in the default rounding mode, so this
// file must never be compiled with -ffast-math (no flush-to-zero either).
inline uint16_t float_to_fp16(float value) {
  uint32_t x = float_to_bits(value);
  const uint32_t sign = x & 0x80000000u;
  x ^= sign;
  uint32_t o;
  if (x >= (127u + 16u) << 23) {  // >= 65536: infinity, or NaN
    o = x > (255u << 23) ? 0x7e00u : 0x7c00u;
  } else if (x < (113u << 23)) {  // below 2^-14: subnormal or zero
    const uint32_t magic = ((127u - 15u) + (23u - 10u) + 1u) << 23;
    o = float_to_bits(bits_to_float(x) + bits_to_float(magic)) - magic;
  } else {
    const uint32_t mant_odd = (x >> 13) & 1u;
    x += (static_cast<uint32_t>(15 - 127) << 23) + 0xfffu;
    x += mant_odd;
    o = x >> 13;  // a carry out of the mantissa rounds up to infinity correctly
  }
  return static_cast<uint16_t>(o | (sign >> 16));
}

inline void sum_tail_fp32(float* out, const float* a, const float* b, int64_t from, int64_t n) {
  for (int64_t i = from; i < n; ++i) out[i] = a[i] + b[i];
}

inline void sum_tail_fp64(double* out, const double* a, const double* b, int64_t from, int64_t n) {
  for (int64_t i = from; i < n; ++i) out[i] = a[i] + b[i];
}

inline void sum_tail_bf16(uint16_t* out, const uint16_t* a, const uint16_t* b, int64_t from,
                          int64_t n) {
  for (int64_t i = from; i < n; ++i) out[i] = float_to_bf16(bf16_to_float(a[i]) + bf16_to_float(b[i]));
}

inline void sum_tail_fp16(uint16_t* out, const uint16_t* a, const uint16_t* b, int64_t from,
                          int64_t n) {
  for (int64_t i = from; i < n; ++i) out[i] = float_to_fp16(fp16_to_float(a[i]) + fp16_to_float(b[i]));
}

}  // namespace
}  // namespace aibench::collectives
